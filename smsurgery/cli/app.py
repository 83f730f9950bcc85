"""The `smsurgery` command's entry point: run one command, handle errors once.

A plain `show`, `diff` or proto-only edit is parsed by `fast`; everything else goes through
the typer app in `commands`, imported only then. Either way the exception
family becomes one line on stderr with exit status 2 (a traceback only with
`--debug`).
"""

from __future__ import annotations

import os
import sys

from smsurgery.cli import boundary, fast
from smsurgery.core.errors import SmsurgeryError


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of `python -m smsurgery`."""
    args = sys.argv[1:] if argv is None else argv
    if argv is None:  # the process's own entry point: a caller in-process keeps its own handlers
        boundary.install_signal_handlers()
    boundary.guard_stdout()
    debug = boundary.STATE["debug"] or "--debug" in args or bool(os.environ.get("SMSURGERY_DEBUG"))
    try:
        try:
            if not fast.run(args):  # a plain show, diff or proto edit runs without the typer app (~30-80 ms)
                from smsurgery.cli import commands

                commands.register_commands(args)  # inside: a signal may arrive while the command's modules import
                commands.app(args=args, prog_name="smsurgery")
        except BaseException as error:
            reported = boundary.as_termination(error)
            if reported is error:
                raise
            raise reported from error
        finally:
            boundary.flush_stdout()
    except SmsurgeryError as error:
        if debug:
            raise
        _fail(" ".join(str(error).split("\n")))
    except KeyboardInterrupt:
        _fail("interrupted" + boundary.published_note(), 130, prefix="")
    except boundary.Terminated as stop:
        _fail(boundary.signal_message(stop.signum) + boundary.published_note(), 128 + stop.signum, "")
    except boundary.StdoutFailed as failure:
        boundary.silence_stdout()
        published = boundary.published_note()
        _fail(f"cannot write to stdout: {failure}{published}", boundary.PUBLISHED_BUT_UNREPORTED if published else 2)
    except RecursionError:
        if debug:
            raise
        _fail("the input is nested too deeply to process (JSON or a graph)")
    except OSError as error:  # the environment refused (a path too long for the system, ...)
        if debug:
            raise
        _fail(boundary.os_error_text(error))


def _fail(message: str, code: int = 2, prefix: str = "error: ") -> None:
    sys.stderr.write(f"smsurgery: {prefix}{message}\n")
    sys.exit(code)
