"""`smsurgery prune`: drop the nodes, functions and variables nothing reaches (published as a new version)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.common import out, parse_tags
from smsurgery.cli.edit_output import run_edits
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.edits.kinds import Prune
from smsurgery.publishing.target import PublishTarget

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="List what would go and the bytes saved; write nothing.")]


@publish_options
def prune(
    path: PathArg, dry_run: DryRunOpt = False, tags: TagsOpt = None, as_json: JsonOpt = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    """Drop the nodes, functions, variables and checkpoint entries no signature, init op or asset needs."""
    if dry_run:
        _dry_run(path, tags)
        return
    run_edits(path, [Prune()], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def _dry_run(path: str, tags: str | None) -> None:
    from smsurgery.core.checkpoint_index import read_index
    from smsurgery.core.model import read
    from smsurgery.core.protos import SavedModel
    from smsurgery.edits.prune import prune_meta

    model = read(path)
    saved = SavedModel()
    saved.CopyFrom(model.proto)
    before = saved.ByteSize()
    pruned = prune_meta(saved.meta_graphs[model.meta_graph(parse_tags(tags)).position], saved)
    index = model.path / "variables" / "variables.index"
    sizes = {entry.name: entry.size for entry in read_index(index)} if index.is_file() else {}
    for name in pruned.nodes:
        out.print(f"node {name}")
    for name in pruned.functions:
        out.print(f"function {name}")
    for name in pruned.collection_entries:
        out.print(f"collection entry {name}")
    for name in pruned.checkpoint_keys:
        out.print(f"variable {name} ({sizes.get(name, 0)} bytes)")
    if not pruned:
        out.print("nothing to prune: every node, function and variable is reached")
        if pruned.variables_kept_because:
            out.print(f"variables kept: {pruned.variables_kept_because}")
        return
    dropped = sum(sizes.get(name, 0) for name in pruned.checkpoint_keys)
    total = sum(sizes.values())
    objects = f", {pruned.objects} object-graph nodes" if pruned.objects else ""
    out.print(
        f"would prune {len(pruned.nodes)} nodes, {len(pruned.functions)} functions and "
        f"{len(pruned.checkpoint_keys)} variables{objects}: saved_model.pb {before} -> {saved.ByteSize()} bytes, "
        f"checkpoint {total} -> {total - dropped} bytes"
    )
    if pruned.variables_kept_because:
        out.print(f"variables kept: {pruned.variables_kept_because}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("prune")(prune)
