"""The arguments and options every command shares, as typer declares them.

Kept apart from `common` so that the read commands' fast path (`fast`)
runs without importing typer; the typer commands import them from here.
"""

from __future__ import annotations

from typing import Annotated

import typer

PathArg = Annotated[
    str,
    typer.Argument(help="Model base, version folder, saved_model.pb, or BASE@VERSION.", show_default=False),
]
VersionOpt = Annotated[
    int | None,
    typer.Option("--version", help="Version number in a model base (default: the newest).", show_default=False),
]
TagsOpt = Annotated[
    str | None,
    typer.Option("--tags", help="Comma-separated tag set of the meta graph (default: serve).", show_default=False),
]
SignatureOpt = Annotated[
    str | None,
    typer.Option("--signature", "-s", help="Signature key.", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]
