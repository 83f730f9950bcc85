"""`smsurgery reexport`: write a TF2 model again through TensorFlow so that Serving's loader runs it."""

from __future__ import annotations

import time
from typing import Any

import typer

from smsurgery.cli.common import note, out, parse_tags, print_json, warn
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget

SCHEMA = "smsurgery.reexport/1"


@publish_options
def reexport(path: PathArg, tags: TagsOpt = None, as_json: JsonOpt = False, *, target: PublishTarget) -> None:
    """Re-export a TF2 model (tf.saved_model.load + save) so the TF1 loader runs every signature."""
    from smsurgery.graph.resave import reexport as reexport_model

    started = time.monotonic()
    result = reexport_model(path, tags=parse_tags(tags), target=target)
    for message in result.notes:
        warn(message)
    published = result.published
    assert published is not None
    if as_json:
        print_json(_report(result, target, time.monotonic() - started))
        return
    out.print(f"published {published.path} (version {published.version} of {published.base})")
    verified = "verified: every signature runs under both loaders, values equal to the source's"
    note(verified if target.verify else "not verified (--no-verify)")


def _report(result: Any, target: PublishTarget, seconds: float) -> dict[str, Any]:
    """The `--json` shape (docs/schemas/reexport.json): where the new version went and what was checked."""
    from smsurgery.core.model import read

    published = result.published
    meta = read(published.path).meta_graph()
    return {
        "schema": SCHEMA,
        "source": str(result.source),
        "base": str(published.base),
        "version": published.version,
        "path": str(published.path),
        "tags": list(meta.tags),
        "signatures": meta.signature_keys(),
        "verified": target.verify,
        "notes": list(result.notes),
        "seconds": round(seconds, 3),
    }


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("reexport")(reexport)
