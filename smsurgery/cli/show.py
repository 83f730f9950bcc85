"""`smsurgery show`: versions, tag sets, signatures, variables, assets."""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.options import JsonOpt, PathArg, SignatureOpt, TagsOpt, VersionOpt
from smsurgery.cli.show_output import show_model


def show(
    path: PathArg,
    version: VersionOpt = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    ops: Annotated[bool, typer.Option("--ops", help="Add a histogram of the ops in the graph.")] = False,
    graph: Annotated[
        bool | None,
        typer.Option(
            "--graph/--no-graph",
            help="Read the graph for placements and the warnings that need it (default: when it is at most 8 MiB).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's versions, tag sets, signatures, variables and assets."""
    show_model(path, version=version, tags=tags, signature=signature, ops=ops, graph=graph, as_json=as_json)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
