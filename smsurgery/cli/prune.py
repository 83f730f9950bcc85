"""`smsurgery prune`: drop the nodes and functions nothing reaches (published as a new version)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.common import JsonOpt, PathArg, TagsOpt, out, parse_tags
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.signature import run_edits
from smsurgery.edits.kinds import Prune
from smsurgery.edits.prune import unreached
from smsurgery.publishing.target import PublishTarget

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="List what would go and the bytes saved; write nothing.")]


@publish_options
def prune(
    path: PathArg, dry_run: DryRunOpt = False, tags: TagsOpt = None, as_json: JsonOpt = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    """Drop main-graph nodes and library functions that no signature, init op, saver or collection needs."""
    if dry_run:
        _dry_run(path, tags)
        return
    run_edits(path, [Prune()], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def _dry_run(path: str, tags: str | None) -> None:
    from smsurgery.core.model import read
    from smsurgery.edits.draft import Draft

    draft = Draft(read(path), parse_tags(tags))
    before = draft.saved_model.ByteSize()
    nodes, functions = unreached(draft.meta)
    draft.apply(Prune())
    for name in nodes:
        out.print(f"node {name}")
    for name in functions:
        out.print(f"function {name}")
    after = draft.saved_model.ByteSize()
    out.print(
        f"would prune {len(nodes)} nodes and {len(functions)} functions: saved_model.pb {before} -> {after} bytes"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("prune")(prune)
