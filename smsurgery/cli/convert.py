"""`smsurgery convert`: a checkpoint, frozen graph or Keras file as the next version of a model base."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smsurgery.cli.common import parse_tags, print_json, say, working
from smsurgery.cli.options import JsonOpt, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.core.model import shape_text
from smsurgery.publishing.target import PublishTarget

if TYPE_CHECKING:
    from smsurgery.graph.convert import ConvertReport
    from smsurgery.graph.convert_source import Candidates

TensorsOpt = Annotated[
    list[str] | None,
    typer.Option(help="ALIAS=TENSOR (repeatable or comma-separated; ':0' optional). Graph sources only."),
]


@publish_options(omit=("out_base", "copy"))
def convert(
    source: Annotated[
        str,
        typer.Argument(
            help="Checkpoint (prefix, .meta or its folder), frozen GraphDef (.pb, .pbtxt), or Keras (.keras, .h5).",
            show_default=False,
        ),
    ],
    base: Annotated[
        str, typer.Argument(help="Model base to write the new version into (created if missing).", show_default=False)
    ],
    inputs: TensorsOpt = None,
    outputs: TensorsOpt = None,
    signature: Annotated[str, typer.Option("--signature", "-s", help="Signature key.")] = "serving_default",
    method: Annotated[str, typer.Option(help="predict, classify or regress.")] = "predict",
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Convert a TF1 checkpoint, frozen GraphDef or Keras file into a new SavedModel version of BASE."""
    from smsurgery.graph.convert import TensorsNeeded
    from smsurgery.graph.convert import convert as convert_model

    try:
        with working("starting TensorFlow, converting and verifying"):
            report = convert_model(
                source,
                base,
                inputs=inputs,
                outputs=outputs,
                signature=signature,
                method=method,
                tags=parse_tags(tags),
                target=target,
            )
    except TensorsNeeded as needed:
        # The candidates are the answer the user needs: stdout, then the one-line error on stderr.
        if as_json:
            print_json(needed.candidates.to_json())
        else:
            render_candidates(needed.candidates)
        raise
    if as_json:
        print_json(report.to_json())
    else:
        render_report(report)


def render_report(report: ConvertReport) -> None:
    say(f"{report.path}  (version {report.version} of {report.base})", style="bold")
    say(f"from {report.source}: {report.format.description}")
    check = report.verification
    say(
        f"verified: outputs equal on {check.batch} generated rows (max abs diff {check.max_abs_diff:g})"
        if check
        else "not verified (--no-verify)"
    )
    view = report.signature
    title = f"signature '{view.key}'  {view.method_name}  tags [{','.join(report.tags)}]"
    table = TextTable(title, [Column(c) for c in ("", "alias", "dtype", "shape", "tensor")])
    for direction, tensors in (("input", view.inputs), ("output", view.outputs)):
        for tensor in tensors:
            shape = list(tensor.shape) if tensor.shape is not None else None
            table.add_row(direction, tensor.alias, tensor.dtype, shape_text(shape), tensor.location)
    print_table(table)


def render_candidates(candidates: Candidates) -> None:
    title = f"candidates in {candidates.source} ({candidates.format.description})"
    table = TextTable(title, [Column(c) for c in ("use as", "tensor", "op", "dtype", "shape")])
    for role, found in (("input", candidates.inputs), ("output", candidates.outputs)):
        for candidate in found:
            shape = list(candidate.shape) if candidate.shape is not None else None
            table.add_row(role, candidate.name, candidate.op, candidate.dtype, shape_text(shape))
    print_table(table)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
