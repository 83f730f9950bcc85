"""`smsurgery input cast`: a signature takes another input dtype, cast (and scaled) for the model."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.edit_output import run_edits
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.signature import EditSignatureOpt
from smsurgery.edits.kinds import CastInput
from smsurgery.publishing.target import PublishTarget

input_app = typer.Typer(help="Change what a signature's input accepts.", no_args_is_help=True)


@input_app.command("cast")
@publish_options
def input_cast(
    path: PathArg,
    alias: Annotated[str, typer.Argument(help="The input alias.")],
    dtype: Annotated[str, typer.Argument(help="The dtype clients send: uint8, float32, int64, ...")],
    scale: Annotated[
        float | None, typer.Option("--scale", help="Multiply after the cast, e.g. 0.00392156862745098 (1/255).")
    ] = None,
    signature: EditSignatureOpt = "serving_default", tags: TagsOpt = None, as_json: JsonOpt = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    """Take ALIAS as DTYPE and cast it to the dtype the model expects (verified: new(x) == old(cast(x)))."""
    edit = CastInput(signature, alias, dtype, scale)
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(input_app, name="input")
