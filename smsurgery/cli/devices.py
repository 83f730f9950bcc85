"""`smsurgery devices strip|set`: clear or rewrite device placements (published as a new version)."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.common import JsonOpt, NewVersionOpt, OutOpt, PathArg, TagsOpt
from smsurgery.cli.signature import CopyOpt, NoVerifyOpt, run_edits
from smsurgery.edits import SetDevices, StripDevices

devices_app = typer.Typer(help="Clear or rewrite the device placements of graph and functions.", no_args_is_help=True)
MatchOpt = Annotated[
    str | None,
    typer.Option("--match", help="Only nodes whose device matches this glob, e.g. '*GPU*'.", show_default=False),
]


@devices_app.command("strip")
def devices_strip(
    path: PathArg, tags: TagsOpt = None, version: NewVersionOpt = None, out_base: OutOpt = None,
    copy: CopyOpt = False, no_verify: NoVerifyOpt = False, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Clear every device field (graph, every function, object-graph variables) so any server can place it."""
    run_edits(path, [StripDevices()], tags=tags, version=version, out_base=out_base, copy=copy,
              no_verify=no_verify, drop_object_graph=False, as_json=as_json)  # fmt: skip


@devices_app.command("set")
def devices_set(
    path: PathArg,
    device: Annotated[str, typer.Argument(help="A TensorFlow device: /device:CPU:0, /gpu:1, /job:x/.../device:GPU:0.")],
    match: MatchOpt = None, tags: TagsOpt = None, version: NewVersionOpt = None, out_base: OutOpt = None,
    copy: CopyOpt = False, no_verify: NoVerifyOpt = False, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Place every node (or those whose device matches --match) on DEVICE."""
    run_edits(path, [SetDevices(device, match)], tags=tags, version=version, out_base=out_base, copy=copy,
              no_verify=no_verify, drop_object_graph=False, as_json=as_json)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.add_typer(devices_app, name="devices")
