"""`smsurgery devices strip|set`: clear or rewrite device placements (published as a new version)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli import edit_commands
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget

devices_app = typer.Typer(help="Clear or rewrite device placements.", no_args_is_help=True)
MatchOpt = Annotated[
    str | None,
    typer.Option("--match", help="Only nodes whose device matches this glob, e.g. '*GPU*'.", show_default=False),
]
DeviceArg = Annotated[str, typer.Argument(help="A TensorFlow device: /device:CPU:0, /gpu:1, /job:x/.../device:GPU:0.")]


@devices_app.command("strip")
@publish_options
def devices_strip(path: PathArg, tags: TagsOpt = None, as_json: JsonOpt = False, *, target: PublishTarget) -> None:
    """Clear every device field (graph, every function, object-graph variables) so any server can place it."""
    edit_commands.devices_strip(path, tags, as_json, target=target)


@devices_app.command("set")
@publish_options
def devices_set(
    path: PathArg, device: DeviceArg, match: MatchOpt = None, tags: TagsOpt = None, as_json: JsonOpt = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    """Place every node (or those whose device matches --match) on DEVICE."""
    edit_commands.devices_set(path, device, match, tags, as_json, target=target)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(devices_app, name="devices")
