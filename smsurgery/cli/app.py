"""The `smsurgery` command: one typer app, errors handled once.

Each command group lives in its own module with a `register(app)` function;
this module only wires them together and turns the exception family into
one line on stderr with exit status 2 (a traceback only with `--debug`).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from smsurgery.errors import SmsurgeryError

app = typer.Typer(
    name="smsurgery",
    help="Surgery on TensorFlow SavedModels served by TensorFlow Serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

_state = {"debug": False}

# One module per command group; each has register(app).
COMMAND_MODULES = ("show", "signature", "diff", "request", "image", "convert", "scan")


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Surgery on TensorFlow SavedModels served by TensorFlow Serving."""
    _state["debug"] = debug or bool(os.environ.get("SMSURGERY_DEBUG"))


for _name in COMMAND_MODULES:
    importlib.import_module(f"smsurgery.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m smsurgery`."""
    try:
        app(args=argv, prog_name="smsurgery")
    except SmsurgeryError as error:
        if _state["debug"] or "--debug" in (argv or sys.argv):
            raise
        message = " ".join(str(error).split("\n"))
        sys.stderr.write(f"smsurgery: error: {message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("smsurgery: interrupted\n")
        sys.exit(130)
