"""The typer app of the `smsurgery` command: every command group registered on demand.

Each command group lives in its own module with a `register(app)` function;
this module only wires them together. `app.main` runs it (or, for a plain
read command, `fast`) and turns errors into one line.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from smsurgery.cli import boundary

app = typer.Typer(
    name="smsurgery",
    help="Surgery on TensorFlow SavedModels served by TensorFlow Serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

# One module per command group; each has register(app). The command names
# each module registers let `main` import only the module a call needs:
# importing every command (numpy, serving protos, ...) would double the
# start-up time of a 0.2 s `show`.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "show": ("show",),
    "signature": ("signature", "alias", "output", "compare"),
    "diff": ("diff",),
    "request": ("request", "run", "warmup"),
    "image": ("image-input",),
    "example": ("example-input",),
    "labels": ("labels",),
    "convert": ("convert",),
    "scan": ("scan",),
    "tensors": ("tensors",),
    "recipes": ("plan", "apply"),
    "check": ("check",),
    "config": ("config",),
    "tags": ("tags",),
    "devices": ("devices",),
    "shape": ("shape",),
    "cast": ("input",),
    "reexport": ("reexport",),
    "prune": ("prune",),
}


def _print_version(value: bool) -> None:
    if value:
        from smsurgery.cli.version import version_line

        sys.stdout.write(version_line() + "\n")
        raise typer.Exit()


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print smsurgery's version and the TensorFlow and protobuf it found, then exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Surgery on TensorFlow SavedModels served by TensorFlow Serving."""
    boundary.STATE["debug"] = debug or bool(os.environ.get("SMSURGERY_DEBUG"))


def _first_paragraph(doc: str | None) -> str | None:
    return " ".join(doc.strip().split("\n\n")[0].split()) if doc else None


def _spell_out_short_help(typer_app: typer.Typer) -> None:
    """Give every command its whole first docstring paragraph as the command list's help.

    Click cuts the command list's help to fit 80 columns ("Write a new
    version with..."), which hides what a command does; a short_help is
    wrapped instead of cut.
    """
    for info in typer_app.registered_commands:
        if not isinstance(info.short_help, str) and info.callback is not None:
            info.short_help = _first_paragraph(info.help or info.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            if not isinstance(group.short_help, str):
                text = _first_paragraph(group.help or group.typer_instance.info.help)
                group.short_help = group.typer_instance.info.short_help = text
            _spell_out_short_help(group.typer_instance)


_registered: set[str] = set()


def register_commands(argv: list[str]) -> None:
    """Register the module of the command in `argv`, or every module (for help)."""
    words = [word for word in argv if not word.startswith("-")]
    wanted = [module for module, names in COMMAND_MODULES.items() if words and words[0] in names]
    for module in wanted or COMMAND_MODULES:
        if module not in _registered:
            importlib.import_module(f"smsurgery.cli.{module}").register(app)
            _registered.add(module)
    _spell_out_short_help(app)
