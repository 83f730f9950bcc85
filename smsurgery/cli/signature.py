"""`smsurgery signature|alias|output ...` (edits published as a new version) and `smsurgery compare`.

Every edit command is one call of `smsurgery.edits.draft.edit` plus rendering:
the new version's path and the list of changes on stdout (or `--json`),
warnings, verification and copy progress on stderr.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from smsurgery.cli import edit_commands
from smsurgery.cli.common import note, parse_tags, print_json, working
from smsurgery.cli.edit_output import run_edits
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.core.errors import InvalidEdit
from smsurgery.core.tensor_pairs import parse_tensor_pairs
from smsurgery.core.user_files import EDITS_LIMIT, read_user_file
from smsurgery.edits.kinds import (
    AddOutput,
    AddSignature,
    Edit,
    RemoveOutput,
    Repoint,
    SetDefault,
    edit_from_json,
)
from smsurgery.publishing.target import PublishTarget

signature_app = typer.Typer(help="Add, rename or remove signatures; choose the default.", no_args_is_help=True)
alias_app = typer.Typer(help="Rename an input or output, or point it at another tensor.", no_args_is_help=True)
output_app = typer.Typer(help="Add or remove a signature's outputs.", no_args_is_help=True)

DropOpt = Annotated[
    bool,
    typer.Option(
        "--drop-object-graph",
        help="TF2 exports: publish without the object graph (both loaders then read signature_def).",
    ),
]
EditSignatureOpt = Annotated[str, typer.Option("--signature", "-s", help="Signature key.")]
InputOpt = Annotated[bool, typer.Option("--input", help="The alias is an input (when it is both).")]
OutputSideOpt = Annotated[bool, typer.Option("--output", help="The alias is an output (when it is both).")]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help="A Keras layer's output instead of TENSOR (layer names: smsurgery tensors).",
                 show_default=False),
]  # fmt: skip


def _tensor_or_layer(tensor: str | None, layer: str | None) -> str:
    """TENSOR, or `layer:NAME` for --layer NAME (how the library names a Keras layer's output)."""
    if (tensor is None) == (layer is None):
        raise InvalidEdit("give either TENSOR or --layer NAME", hint="smsurgery tensors PATH lists both")
    return tensor if tensor is not None else f"layer:{layer}"


# --------------------------------------------------------------------------- signature


@signature_app.command("add")
@publish_options
def signature_add(
    path: PathArg,
    key: Annotated[str, typer.Argument(help="Key of the new signature.")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="ALIAS=TENSOR, repeatable or comma-separated.")
    ] = None,
    outputs: Annotated[
        list[str] | None, typer.Option("--output", "-o", help="ALIAS=TENSOR, repeatable or comma-separated.")
    ] = None,
    layers: Annotated[
        list[str] | None, typer.Option("--layer", help="ALIAS=LAYER: a Keras layer's output, repeatable.")
    ] = None,
    method: Annotated[str, typer.Option("--method", help="predict, classify or regress.")] = "predict",
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Add a signature from tensors already in the graph (dtype and shape come from the graph)."""
    wanted = {
        **parse_tensor_pairs(outputs, "output"),
        **{alias: f"layer:{name}" for alias, name in parse_tensor_pairs(layers, "layer").items()},
    }
    edit = AddSignature(key, parse_tensor_pairs(inputs, "input"), wanted, method)
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


@signature_app.command("rename")
@publish_options
def signature_rename(
    path: PathArg,
    old: Annotated[str, typer.Argument(help="Current key.")],
    new: Annotated[str, typer.Argument(help="New key.")],
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Rename a signature (in signature_def and, for TF2 exports, in the object graph)."""
    edit_commands.signature_rename(path, old, new, tags, drop_object_graph, as_json, target=target)


@signature_app.command("remove")
@publish_options
def signature_remove(
    path: PathArg,
    key: Annotated[str, typer.Argument(help="Key of the signature to remove.")],
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Remove a signature (never the last one)."""
    edit_commands.signature_remove(path, key, tags, drop_object_graph, as_json, target=target)


@signature_app.command("set-default")
@publish_options
def signature_set_default(
    path: PathArg,
    key: Annotated[str, typer.Argument(help="The signature that becomes serving_default.")],
    previous: Annotated[
        str | None, typer.Option("--previous", help="New key for the signature it replaces.", show_default=False)
    ] = None,
    drop_previous: Annotated[bool, typer.Option("--drop-previous", help="Remove the one it replaces.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Serve KEY under its own name too.")] = False,
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Make KEY the default signature (serving_default)."""
    edit = SetDefault(key, previous=previous, drop_previous=drop_previous, keep=keep)
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


@signature_app.command("apply")
@publish_options
def signature_apply(
    path: PathArg,
    edits_file: Annotated[str, typer.Argument(metavar="EDITS_JSON", help="A JSON list of edits, or - for stdin.")],
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Apply several edits in one go, as one new version."""
    run_edits(
        path, read_edits(edits_file), tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json
    )


def read_edits(source: str) -> list[Edit]:
    """`[{"op": "rename_signature", "old": ..., "new": ...}, ...]` from a file or stdin."""
    data = read_user_file(source, what="edits file", limit=EDITS_LIMIT, error=InvalidEdit)
    try:
        data = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InvalidEdit(f"edits file {source} is not UTF-8 text: {error.reason} at byte {error.start}") from error
    except json.JSONDecodeError as error:
        raise InvalidEdit(f"edits file {source} is not JSON: {error.msg} (line {error.lineno})") from error
    except RecursionError as error:
        raise InvalidEdit(f"edits file {source} is JSON nested too deeply") from error
    items = data.get("edits") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InvalidEdit(f"edits file {source} must hold a non-empty list of edits")
    return [edit_from_json(item) for item in items]


# --------------------------------------------------------------------------- alias / output


@alias_app.command("rename")
@publish_options
def alias_rename(
    path: PathArg,
    old: Annotated[str, typer.Argument(help="Current alias.")],
    new: Annotated[str, typer.Argument(help="New alias.")],
    signature: EditSignatureOpt = "serving_default",
    as_input: InputOpt = False,
    as_output: OutputSideOpt = False,
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Rename an input or output of a signature (TF2: argument order permuted to match)."""
    edit_commands.alias_rename(
        path, old, new, signature, as_input, as_output, tags, drop_object_graph, as_json, target=target
    )


@alias_app.command("repoint")
@publish_options
def alias_repoint(
    path: PathArg,
    alias: Annotated[str, typer.Argument(help="The input or output alias.")],
    tensor: Annotated[str | None, typer.Argument(help="An address from `smsurgery tensors`, or a unique name.")] = None,
    signature: EditSignatureOpt = "serving_default",
    as_input: InputOpt = False,
    as_output: OutputSideOpt = False,
    layer: LayerOpt = None,
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Point an alias at another tensor of the same dtype (a shape change is a warning)."""
    edit = Repoint(signature, alias, _tensor_or_layer(tensor, layer), side=edit_commands.side(as_input, as_output))
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


@output_app.command("add")
@publish_options
def output_add(
    path: PathArg,
    alias: Annotated[str, typer.Argument(help="Alias of the new output.")],
    tensor: Annotated[str | None, typer.Argument(help="An address from `smsurgery tensors`, or a unique name.")] = None,
    signature: EditSignatureOpt = "serving_default",
    layer: LayerOpt = None,
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Expose a tensor (embeddings, logits; inside TF2 functions too) as a new output of a signature."""
    edit = AddOutput(signature, alias, _tensor_or_layer(tensor, layer))
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


@output_app.command("remove")
@publish_options
def output_remove(
    path: PathArg,
    alias: Annotated[str, typer.Argument(help="Alias of the output to remove.")],
    signature: EditSignatureOpt = "serving_default",
    tags: TagsOpt = None,
    drop_object_graph: DropOpt = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Remove an output of a signature (never the last one)."""
    run_edits(
        path,
        [RemoveOutput(signature, alias)],
        tags=tags,
        target=target,
        drop_object_graph=drop_object_graph,
        as_json=as_json,
    )


# --------------------------------------------------------------------------- compare


def compare(
    a: Annotated[str, typer.Argument(help="First model (reference): base, version folder or BASE@VERSION.")],
    b: Annotated[str, typer.Argument(help="Second model.")],
    signature: Annotated[str | None, typer.Option("--signature", "-s", help="Compare only this signature.")] = None,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance.")] = 0.0,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance.")] = 1e-6,
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the signatures A and B share on the same generated inputs; exit 3 if outputs differ."""
    from smsurgery.graph.verify import compare as compare_models

    with working("starting TensorFlow, running both versions"):
        report = compare_models(a, b, signature=signature, tags=parse_tags(tags), rtol=rtol, atol=atol)
    if as_json:
        print_json(report.to_json())
    else:
        render_comparison(report)
    if not report.ok:
        raise typer.Exit(3)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def render_comparison(report: Any) -> None:
    from smsurgery.cli.tables import Column, TextTable, print_table

    title = f"{report.a}  vs  {report.b}  (rtol {report.rtol}, atol {report.atol})"
    table = TextTable(title, [Column(c) for c in ("signature", "output", "status", "max abs diff", "max rel diff")])
    for outcome in report.signatures:
        if not outcome.outputs:
            table.add_row(outcome.key, "", outcome.status, "", outcome.error or "")
        for diff in outcome.outputs:
            table.add_row(outcome.key, diff.alias, diff.status, _number(diff.max_abs), _number(diff.max_rel))
    print_table(table)
    for message in report.notes:
        note(message)
    note("outputs agree within tolerance" if report.ok else "outputs differ: " + "; ".join(report.failures()))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(signature_app, name="signature")
    app.add_typer(alias_app, name="alias")
    app.add_typer(output_app, name="output")
    app.command("compare")(compare)
