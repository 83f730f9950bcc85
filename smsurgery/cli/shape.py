"""`smsurgery shape set`: change an input's declared and actual shape (e.g. batch 1 -> dynamic)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli import edit_commands
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.signature import EditSignatureOpt
from smsurgery.publishing.target import PublishTarget

shape_app = typer.Typer(help="Change the shape of a signature's input (batch 1 -> dynamic).", no_args_is_help=True)
BatchOpt = Annotated[
    str | None,
    typer.Option("--batch", help="Dimension 0 only: 'dynamic' (-1) or a size; DIMS may then be left out.",
                 show_default=False),
]  # fmt: skip


# DIMS usually starts with -1, which click would take for an option.
@shape_app.command("set", context_settings={"ignore_unknown_options": True})
@publish_options
def shape_set(
    path: PathArg,
    alias: Annotated[str, typer.Argument(help="The input alias.")],
    dims: Annotated[str | None, typer.Argument(help="New shape, e.g. -1,224,224,3 (-1: unknown).")] = None,
    batch: BatchOpt = None, signature: EditSignatureOpt = "serving_default", tags: TagsOpt = None,
    as_json: JsonOpt = False, *, target: PublishTarget,
) -> None:  # fmt: skip
    """Declare an input with a new shape; verification runs a size the old version refused."""
    edit_commands.shape_set(path, alias, dims, batch, signature, tags, as_json, target=target)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(shape_app, name="shape")
