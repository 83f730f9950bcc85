"""`smsurgery example-input`: a signature that parses serialized tf.Examples (Serving's Classify/Regress APIs)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smsurgery.cli.attach_report import print_report
from smsurgery.cli.common import out, parse_tags, working
from smsurgery.cli.options import JsonOpt, PathArg, SignatureOpt, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget


@publish_options
def example_input(
    path: PathArg,
    signature: SignatureOpt = None,
    new_key: Annotated[
        str | None,
        typer.Option("--as", help="Key of the new signature (default: classify, regress or predict_examples)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="predict, classify or regress.")] = "predict",
    output: Annotated[
        str | None, typer.Option("--output", help="classify/regress: the output that becomes scores/outputs.")
    ] = None,
    spec_file: Annotated[
        str | None, typer.Option("--spec", help="Feature spec file (JSON or TOML): input alias -> feature.")
    ] = None,
    image_feature: Annotated[
        str | None,
        typer.Option("--image-feature", help="Feed the image input from this bytes feature (e.g. image/encoded)."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="With --image-feature: image-input's preset (e.g. resnet50).")
    ] = None,
    route: Annotated[str, typer.Option("--route", help="auto, session (TF1 graph) or function (TF2).")] = "auto",
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Add a signature whose input `inputs` takes serialized tf.Examples, parsed in the graph."""
    from smsurgery.graph.example import add_example_input

    with working("starting TensorFlow, building and verifying the new version"):
        report = add_example_input(
            path, signature, tags=parse_tags(tags), target=target, new_key=new_key, method=method, output=output,
            spec_file=spec_file, route=route, image_feature=image_feature,
            image_options={"preset": preset} if preset else {},
        )  # fmt: skip
    print_report(report.to_json(), as_json, render)


def render(report: dict[str, Any]) -> None:
    out.print(
        f"signature '{report['target']}' ({report['method_name']}): inputs (DT_STRING, [None], serialized "
        f"tf.Example) -> {', '.join(report['outputs'])}; feeds '{report['signature']}'"
    )
    for feature in report["features"]:
        kind = "var-length" if feature["var_len"] else f"shape {feature['shape']}"
        out.print(f"  feature '{feature['name']}' ({feature['dtype']}, {kind}) -> input '{feature['alias']}'")
    if report["verification"]:
        diffs = report["verification"]["new_signature_max_abs_diff"]
        out.print(
            "verified: new signature vs eager parsing, max abs diff "
            + ", ".join(f"{loader} {value:.2g}" for loader, value in diffs.items())
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("example-input")(example_input)
