"""`smsurgery shape set`: change an input's declared and actual shape (e.g. batch 1 -> dynamic)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.common import parse_tags
from smsurgery.cli.edit_output import run_edits
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.signature import EditSignatureOpt
from smsurgery.core.errors import InvalidEdit
from smsurgery.core.model import read
from smsurgery.edits.kinds import SetShape
from smsurgery.edits.shapes import parse_dims
from smsurgery.publishing.target import PublishTarget

shape_app = typer.Typer(help="Change the shape of a signature's input (batch 1 -> dynamic).", no_args_is_help=True)
BatchOpt = Annotated[
    str | None,
    typer.Option("--batch", help="Dimension 0 only: 'dynamic' (-1) or a size; DIMS may then be left out.",
                 show_default=False),
]  # fmt: skip


def _dims(path: str, tags: str | None, key: str, alias: str, dims: str | None, batch: str | None) -> tuple[int, ...]:
    """DIMS as given, or the current shape with dimension 0 replaced by --batch."""
    if dims is not None and batch is not None:
        raise InvalidEdit("give DIMS or --batch, not both")
    if dims is not None:
        return parse_dims(dims)
    if batch is None:
        raise InvalidEdit("give the new shape as DIMS (e.g. -1,224,224,3) or --batch dynamic")
    current = read(path).meta_graph(parse_tags(tags)).signature(key).input(alias).shape
    if not current:
        raise InvalidEdit(f"input '{alias}' has no dimension 0 to change (shape {current})", hint="give DIMS")
    return (parse_dims("-1" if batch == "dynamic" else batch)[0], *current[1:])


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
    edit = SetShape(signature, alias, _dims(path, tags, signature, alias, dims, batch))
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(shape_app, name="shape")
