"""`smsurgery reexport`: write a TF2 model again through TensorFlow so that Serving's loader runs it."""

from __future__ import annotations

import typer

from smsurgery.cli.common import NewVersionOpt, OutOpt, PathArg, TagsOpt, note, out, parse_tags, warn
from smsurgery.cli.signature import NoVerifyOpt


def reexport(
    path: PathArg, tags: TagsOpt = None, version: NewVersionOpt = None, out_base: OutOpt = None,
    no_verify: NoVerifyOpt = False,
) -> None:  # fmt: skip
    """Re-export a TF2 model (tf.saved_model.load + save) so the TF1 loader runs every signature."""
    from smsurgery.graph.resave import reexport as reexport_model

    result = reexport_model(path, tags=parse_tags(tags), out=out_base, version=version, verify=not no_verify)
    for message in result.notes:
        warn(message)
    published = result.published
    assert published is not None
    out.print(f"published {published.path} (version {published.version} of {published.base})")
    note(
        "not verified (--no-verify)" if no_verify else "verified: every signature runs under both loaders, values equal"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("reexport")(reexport)
