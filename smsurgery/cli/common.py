"""What every command shares: option aliases, consoles, JSON output.

Results go to stdout (a rich table, or JSON with `--json`); errors, warnings
and progress go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from smsurgery.layout import check_new_version

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)

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


# Options of every command that writes a new version. In these commands
# `--version` names the version to WRITE; the source version is PATH@N.
def _new_version(value: int | None) -> int | None:
    """Refuse a number Serving cannot serve before any work is done (not after verifying)."""
    return None if value is None else check_new_version(value)


NewVersionOpt = Annotated[
    int | None,
    typer.Option(
        "--version",
        callback=_new_version,
        help="Number of the new version (default: the next free one); choose the source version with PATH@N.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option("--out", help="Model base to publish into (default: the source's).", show_default=False),
]


def parse_tags(tags: str | None) -> tuple[str, ...] | None:
    """`"serve,gpu"` -> ("serve", "gpu"); None stays None (the default rule applies)."""
    if tags is None:
        return None
    return tuple(t.strip() for t in tags.split(",") if t.strip())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err.print(f"warning: {message}", style="yellow")


def note(message: str) -> None:
    err.print(message, markup=False, highlight=False)


def tensor_location(tensor: dict[str, Any]) -> str:
    """A tensor's name, or its composite components, from the show/diff JSON."""
    if tensor["name"] is not None:
        return tensor["name"]
    parts = ", ".join(f"{k}={v}" for k, v in tensor["components"].items())
    return f"{tensor['encoding']}({parts})"


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
