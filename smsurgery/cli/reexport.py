"""`smsurgery reexport`: write a TF2 model again through TensorFlow so that Serving's loader runs it."""

from __future__ import annotations

import typer

from smsurgery.cli.common import PathArg, TagsOpt, note, out, parse_tags, warn
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget


@publish_options
def reexport(path: PathArg, tags: TagsOpt = None, *, target: PublishTarget) -> None:
    """Re-export a TF2 model (tf.saved_model.load + save) so the TF1 loader runs every signature."""
    from smsurgery.graph.resave import reexport as reexport_model

    result = reexport_model(path, tags=parse_tags(tags), target=target)
    for message in result.notes:
        warn(message)
    published = result.published
    assert published is not None
    out.print(f"published {published.path} (version {published.version} of {published.base})")
    verified = "verified: every signature runs under both loaders, values equal to the source's"
    note(verified if target.verify else "not verified (--no-verify)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("reexport")(reexport)
