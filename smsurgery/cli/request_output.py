"""What `smsurgery request` prints: the REST body (or gRPC request) and the curl line that posts it.

Free of typer, so that `fast` can run a plain `request` without building the
typer app; `request` declares the command's options and calls `print_request`.
`run` and `warmup` build their requests with `build`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from smsurgery.cli.common import note, parse_tags, warn
from smsurgery.core.errors import PathNotFound

if TYPE_CHECKING:  # the request builders import numpy: only when a command runs, not for --help
    from smsurgery.serving.request_body import BuiltRequest


def build(
    path: str,
    version: int | None,
    tags: str | None,
    signature: str | None,
    method: str | None,
    fmt: str,
    inputs: list[str] | None,
    batch: int,
    *,
    rest: bool = True,
    model_name: str | None = None,
) -> BuiltRequest:
    """The request that a command's options describe; the builders (and numpy) load only here."""
    from smsurgery.serving.request_body import build_request
    from smsurgery.serving.tf_example import parse_input_flags

    return build_request(
        path,
        version=version,
        tags=parse_tags(tags),
        signature=signature,
        method=method,
        fmt=fmt,
        specs=parse_input_flags(inputs),
        batch=batch,
        rest=rest,
        model_name=model_name,
    )


def warn_notes(built: BuiltRequest) -> None:
    for text in built.notes:
        warn(text)


def print_request(
    path: str,
    version: int | None = None,
    tags: str | None = None,
    signature: str | None = None,
    method: str | None = None,
    fmt: str = "row",
    inputs: list[str] | None = None,
    batch: int = 1,
    host: str = "localhost",
    model_name: str | None = None,
    curl: bool = False,
    grpc: bool = False,
    out: Path | None = None,
) -> None:
    """Print the REST body for a signature (stdout) and the curl line that posts it (stderr)."""
    built = build(path, version, tags, signature, method, fmt, inputs, batch, rest=not grpc, model_name=model_name)
    warn_notes(built)
    if grpc:
        from smsurgery.serving.grpc_requests import grpc_request, message_text

        message = grpc_request(built)
        if out is None:
            sys.stdout.write(message_text(message))
        elif out.suffix == ".pb":
            _write(out, message.SerializeToString(deterministic=True))
        else:
            _write(out, message_text(message).encode("utf-8"))
        return
    if out is not None:
        _write(out, (built.text() + "\n").encode("utf-8"))
    from smsurgery.serving.request_body import curl_line

    line = curl_line(built, host, body_file=str(out) if out is not None else None)
    if curl:
        sys.stdout.write(line + "\n")
        return
    if out is None:
        sys.stdout.write(built.text() + "\n")
    note(line)
    if out is None and line.endswith("@body.json"):
        note("(body.json: the body printed above; save it with > body.json, or use -o FILE)")


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise PathNotFound(f"cannot write {path}: {error.strerror}") from error
