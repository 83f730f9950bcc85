"""`smsurgery tags set|add`: retag a meta graph, or give it a second tag set (published as a new version)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli import edit_commands
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget

tags_app = typer.Typer(help="Retag a meta graph for Serving, or add a tag set.", no_args_is_help=True)
NewTagsArg = Annotated[
    str, typer.Argument(metavar="NEW_TAGS", help="Comma-separated tag set, e.g. serve or serve,gpu.")
]


@tags_app.command("set")
@publish_options
def tags_set(
    path: PathArg, new_tags: NewTagsArg, tags: TagsOpt = None, as_json: JsonOpt = False, *, target: PublishTarget
) -> None:
    """Replace the tag set of a meta graph (--tags OLD; default: serve, or the only one)."""
    edit_commands.tags_set(path, new_tags, tags, as_json, target=target)


@tags_app.command("add")
@publish_options
def tags_add(
    path: PathArg, new_tags: NewTagsArg, tags: TagsOpt = None, as_json: JsonOpt = False, *, target: PublishTarget
) -> None:
    """Serve a meta graph under a second tag set too (a copy of it under NEW_TAGS)."""
    edit_commands.tags_add(path, new_tags, tags, as_json, target=target)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(tags_app, name="tags")
