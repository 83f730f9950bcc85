"""`smsurgery diff`: what changed between two versions, and does it break clients?

Exit status: 0 no changes, 1 only compatible or internal changes, 3 breaking
changes (2 stays for errors), so a CI job can gate on it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from smsurgery.cli.diff_output import diff_models
from smsurgery.cli.options import JsonOpt, SignatureOpt, TagsOpt


def diff_command(
    old: Annotated[
        str,
        typer.Argument(
            help="Older side: model base (its newest version), version folder or BASE@VERSION. "
            "Alone: a model base, whose newest version is compared with the one before.",
            show_default=False,
            metavar="OLD",
        ),
    ],
    new: Annotated[
        str | None, typer.Argument(help="Newer side, same forms.", show_default=False, metavar="NEW")
    ] = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also compare variables (checkpoint index) and asset files (sha256).")
    ] = False,
    as_json: JsonOpt = False,
    fmt: Annotated[
        str, typer.Option("--format", help="Human output: text (tables) or markdown (a pull request comment).")
    ] = "text",
) -> None:
    """Compare two versions; exit 0 no changes, 1 compatible/internal only, 3 breaking."""
    raise typer.Exit(diff_models(old, new, tags=tags, signature=signature, deep=deep, as_json=as_json, fmt=fmt))


def register(app: typer.Typer) -> None:
    app.command("diff")(diff_command)
