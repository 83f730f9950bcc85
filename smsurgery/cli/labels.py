"""`smsurgery labels`: top-k and a label lookup after a score output (`classes` + `scores`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smsurgery.cli.attach_report import print_report
from smsurgery.cli.common import out, parse_tags, working
from smsurgery.cli.options import JsonOpt, PathArg, SignatureOpt, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget


@publish_options
def labels(
    path: PathArg,
    labels_file: Annotated[str, typer.Option("--file", help="Labels, UTF-8, one per line, in class order.")],
    signature: SignatureOpt = None,
    output: Annotated[
        str | None, typer.Option("--output", help="The score output (default: the only float one).")
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="How many classes to return (default: all).")] = None,
    new_key: Annotated[str | None, typer.Option("--as", help="Key of the new signature (default: labels).")] = None,
    route: Annotated[str, typer.Option("--route", help="auto, session (TF1 graph) or function (TF2).")] = "auto",
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Add a signature that returns the top-k labels (classes, DT_STRING) and their scores."""
    from smsurgery.graph.labels import add_labels

    with working("starting TensorFlow, building and verifying the new version"):
        report = add_labels(
            path, labels_file, signature, tags=parse_tags(tags), target=target, output=output, top_k=top_k,
            new_key=new_key, route=route,
        )  # fmt: skip
    print_report(report.to_json(), as_json, render)


def render(report: dict[str, Any]) -> None:
    out.print(
        f"signature '{report['target']}': inputs of '{report['signature']}' -> classes (DT_STRING), scores "
        f"(DT_FLOAT): top {report['top_k']} of {report['classes']} from '{report['output']}'; {report['asset']}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("labels")(labels)
