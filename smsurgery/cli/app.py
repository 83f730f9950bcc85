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
    "convert": ("convert",),
    "scan": ("scan",),
}


@app.callback()
def _main_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Surgery on TensorFlow SavedModels served by TensorFlow Serving."""
    _state["debug"] = debug or bool(os.environ.get("SMSURGERY_DEBUG"))


_registered: set[str] = set()


def register_commands(argv: list[str]) -> None:
    """Register the module of the command in `argv`, or every module (for help)."""
    words = [word for word in argv if not word.startswith("-")]
    wanted = [module for module, names in COMMAND_MODULES.items() if words and words[0] in names]
    for module in wanted or COMMAND_MODULES:
        if module not in _registered:
            importlib.import_module(f"smsurgery.cli.{module}").register(app)
            _registered.add(module)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m smsurgery`."""
    args = sys.argv[1:] if argv is None else argv
    register_commands(args)
    try:
        app(args=args, prog_name="smsurgery")
    except SmsurgeryError as error:
        if _state["debug"] or "--debug" in args:
            raise
        message = " ".join(str(error).split("\n"))
        sys.stderr.write(f"smsurgery: error: {message}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("smsurgery: interrupted\n")
        sys.exit(130)
