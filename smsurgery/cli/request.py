"""`smsurgery request`, `run` and `warmup`: what to POST, what Serving answers, warmup records.

`request` never starts the TensorFlow runtime (it reads protos only); `run`
and `warmup` load the model with the TF1 loader, as Serving does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smsurgery.cli.common import note, parse_tags, print_json, warn, working
from smsurgery.cli.options import PathArg, SignatureOpt, TagsOpt, VersionOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.request_output import build, print_request, warn_notes
from smsurgery.core.errors import InvalidRequest
from smsurgery.core.user_files import BODY_LIMIT, read_user_file
from smsurgery.publishing.target import PublishTarget

if TYPE_CHECKING:  # the request builders import numpy: only when a command runs, not for --help
    from smsurgery.serving.request_body import BuiltRequest

InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="ALIAS=VALUE: a JSON literal, @file.json, @file.npy, or @file (bytes, sent as b64). "
        "The whole tensor, batch dimension included; repeat an alias for one instance each. "
        "For classify/regress: FEATURE=VALUE, or inputs=@examples.json.",
        show_default=False,
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", help="REST body format: row (instances) or columnar (inputs).")]
MethodOpt = Annotated[
    str | None,
    typer.Option(
        "--method", help="predict, classify or regress (default: the signature's method).", show_default=False
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", help="Examples / size of unknown dimension 0 in sample values.")]


def _run_checked(built: BuiltRequest, context: str = "") -> str:
    """Run a built request; a failure carries the builder's warnings as its hint (one line still)."""
    from smsurgery.graph.run import run_request

    try:
        with working("starting TensorFlow, loading the version as Serving does"):
            return run_request(built).text
    except InvalidRequest as error:
        hint = "; ".join(built.notes) or error.hint
        raise InvalidRequest(context + error.message, hint=hint) from error


def request(
    path: PathArg,
    version: VersionOpt = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    method: MethodOpt = None,
    fmt: FormatOpt = "row",
    inputs: InputOpt = None,
    batch: BatchOpt = 1,
    host: Annotated[str, typer.Option("--host", help="Server for the curl line (HOST, HOST:PORT or a URL).")] = (
        "localhost"
    ),
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="Model name in the URL (default: the model base's folder name).")
    ] = None,
    curl: Annotated[bool, typer.Option("--curl", help="Print only the curl line, on stdout.")] = False,
    grpc: Annotated[bool, typer.Option("--grpc", help="Write the gRPC request (text format) instead.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the body (or with --grpc the request; binary if it ends in .pb).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the REST body for a signature (stdout) and the curl line that posts it (stderr)."""
    print_request(path, version, tags, signature, method, fmt, inputs, batch, host, model_name, curl, grpc, out)


def run(
    path: PathArg,
    version: VersionOpt = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    method: MethodOpt = None,
    body: Annotated[
        str | None, typer.Option("--body", "-b", help="REST body file, or - for stdin.", show_default=False)
    ] = None,
    fmt: FormatOpt = "row",
    inputs: InputOpt = None,
    batch: BatchOpt = 1,
) -> None:
    """Answer a REST body (or --input values, or samples) as TensorFlow Serving would, via the TF1 loader."""
    from smsurgery.graph.run import run_body

    _warn_serving_tags(path, version, tags)
    if body is not None and inputs:
        raise InvalidRequest("give either --body or --input, not both")
    if body is None:
        built = build(path, version, tags, signature, method, fmt, inputs, batch)
        sys.stdout.write(_run_checked(built) + "\n")
        warn_notes(built)
        return
    data = _read_body(body)
    with working("starting TensorFlow, loading the version as Serving does"):
        result = run_body(path, data, version=version, tags=parse_tags(tags), signature=signature, method=method)
    sys.stdout.write(result.text + "\n")


def _warn_serving_tags(path: str, version: int | None, tags: str | None) -> None:
    """With the default tag rule, say so when Serving (which wants `serve`) would not load the model."""
    from smsurgery.core.model import read
    from smsurgery.edits.tags import serving_tags_warning

    if tags is not None:
        return
    model = read(path, version)
    message = serving_tags_warning(model.tag_sets, model.meta_graph(None).tags)
    if message:
        warn(message)


def _read_body(body: str) -> bytes:
    return read_user_file(body, what="body", limit=BODY_LIMIT, error=InvalidRequest)


def warmup(
    path: PathArg,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    method: MethodOpt = None,
    inputs: InputOpt = None,
    batch: BatchOpt = 1,
    count: Annotated[int, typer.Option("--count", help="Number of records (1-1000).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    *,
    target: PublishTarget,
) -> None:
    """Write a new version with assets.extra/tf_serving_warmup_requests (PredictionLog records).

    Verification runs the request once through the TF1 loader first, as Serving will at load time.
    """
    from smsurgery.serving.warmup import publish_warmup, warmup_bytes

    built = build(path, None, tags, signature, method, "row", inputs, batch, rest=False)
    warmup_bytes(built, count)  # refuse a bad --count before loading anything
    if target.verify:
        _run_checked(built, "the warmup request fails, so Serving would refuse to load the version: ")
    report = publish_warmup(built, count, target)
    if as_json:
        print_json(report.to_json())
        return
    records = f"{report.records} PredictionLog record{'s' if report.records != 1 else ''}"
    sys.stdout.write(
        f"wrote {report.path}: {report.file.relative_to(report.path)} with {records} "
        f"({report.method}, signature '{report.signature}', {report.bytes} bytes)\n"
    )
    if report.replaced:
        note("the source version's warmup file was replaced")
    warn_notes(built)


def register(app: typer.Typer) -> None:
    app.command("request")(request)
    app.command("run")(run)
    app.command("warmup")(publish_options(warmup))
