"""`smsurgery tensors`: the tensors a signature computes, inside its functions too (no TensorFlow)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smsurgery.cli.common import note, parse_tags, print_json
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.core.model import shape_text
from smsurgery.core.tensor_index import list_tensors

MAX_LAYERS_SHOWN = 30


def tensors(
    path: PathArg,
    pattern: Annotated[str | None, typer.Argument(help="Glob or regex over addresses and node names.")] = None,
    signature: Annotated[
        str | None, typer.Option("--signature", "-s", help="Signature key (default: serving_default).")
    ] = None,
    op: Annotated[str | None, typer.Option("--op", help="Only tensors of this op (Mean, MatMul, ...).")] = None,
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the tensors a signature computes, with the address every edit accepts."""
    report = list_tensors(path, pattern, signature=signature, op=op, tags=parse_tags(tags))
    if as_json:
        print_json(report)
    else:
        render_tensors(report)


def render_tensors(report: dict[str, Any]) -> None:
    title = f"signature '{report['signature']}': {report['count']} of {report['total']} tensors"
    table = TextTable(title, [Column(c, overflow="fold") for c in ("address", "op", "dtype", "shape", "layer")])
    for entry in report["tensors"]:
        layer = entry["layer"] or ""
        if entry["context"]:
            layer = f"{layer} ({entry['context']})".strip()
        shape = shape_text(entry["shape"]) if entry["shape"] is not None else "?"
        table.add_row(entry["address"], entry["op"], entry["dtype"] or "?", shape, layer)
    print_table(table)
    layers = report["layers"]
    if layers:
        shown = ", ".join(layers) if len(layers) <= MAX_LAYERS_SHOWN else f"{len(layers)} (--json lists them)"
        note("Keras layers: " + shown)


def register(app: typer.Typer) -> None:
    app.command("tensors")(tensors)
