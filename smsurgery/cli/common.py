"""What every command shares: option aliases, consoles, JSON output.

Results go to stdout (tables, `cli/tables.py`, or JSON with `--json`); errors, warnings
and progress go to stderr, so stdout stays parseable.

rich is imported only when something is drawn with it: building a console
costs ~20 ms of every call, which at small sizes is a fifth of `show --json`
(issue 14). A warning or note on a stream that is not a terminal is written
as the plain text rich would write there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# Piped output is not cut to 80 columns: a table read by a script or saved to
# a file keeps whole tensor names (`StatefulPartitionedCall_1:0`, not `Stateful…`).
PIPED_WIDTH = 1000


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False, width=PIPED_WIDTH)
    return console


class _LazyConsole:
    """A rich Console built on first use, standing in for it everywhere (`out.print`, `console=err`)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def built(self) -> bool:
        return self._console is not None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = _console(stderr=self._stderr)
        return getattr(self._console, name)


out: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]

# What rich's Text drops from a string before printing it (rich.control.STRIP_CONTROL_CODES: BEL, BS, VT, FF, CR).
_RICH_STRIPS = dict.fromkeys((7, 8, 11, 12, 13))


def _plain(console: Any, stream: Any) -> bool:
    """True when rich would write to `stream` with no colour or terminal codes: not a terminal, not forced to be one.

    Conservative: any variable that can make rich treat a stream as a terminal
    (TTY_COMPATIBLE, FORCE_COLOR), a console already built, or a notebook or
    IDLE shell calling `main` in-process sends the text through rich.
    """
    if console.built or "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    if "IPython" in sys.modules or "idlelib" in sys.modules:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is not None and not isatty()
    except ValueError:  # a closed stream: rich calls it no terminal too
        return True


def _plain_stderr() -> bool:
    return _plain(err, sys.stderr)


def _write_plain(stream: Any, message: str) -> None:
    """One message as rich's soft-wrapped, unstyled print writes it: control codes dropped, tabs expanded."""
    lines = message.translate(_RICH_STRIPS).split("\n")
    stream.write("\n".join(line.expandtabs(8) for line in lines) + "\n")
    stream.flush()


def piped_stdout() -> bool:
    """True when a command's result can be written to stdout as plain text, without rich."""
    return _plain(out, sys.stdout)


def say(message: str, style: str | None = None) -> None:
    """A line of a command's result on stdout (`style` on a terminal); plain text, without rich, on a pipe."""
    if piped_stdout():
        _write_plain(sys.stdout, message)
    else:
        out.print(message, style=style)


_spinners: list[Any] = []  # the active `working` status, so a progress bar can take its place


@contextlib.contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while TensorFlow starts, loads and verifies; silent when stderr is not a terminal.

    Asked without building a console when it can be: rich costs ~40 ms of a
    0.3 s proto edit whose stderr is a pipe.
    """
    if _plain_stderr() or not err.is_terminal:
        yield
        return
    status = err.status(message, spinner="dots")
    status.start()
    _spinners.append(status)
    try:
        yield
    finally:
        _spinners.remove(status)
        status.stop()


def stop_spinner() -> None:
    """Make room for a progress bar: rich shows one live display at a time."""
    for status in _spinners:
        status.stop()


# Options of every command that writes a new version. In these commands
# `--version` names the version to WRITE; the source version is PATH@N.
def parse_tags(tags: str | None) -> tuple[str, ...] | None:
    """`"serve,gpu"` -> ("serve", "gpu"); None stays None (the default rule applies)."""
    if tags is None:
        return None
    return tuple(t.strip() for t in tags.split(",") if t.strip())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    if _plain_stderr():
        _write_plain(sys.stderr, f"warning: {message}")
    else:
        err.print(f"warning: {message}", style="yellow")


def note(message: str) -> None:
    if _plain_stderr():
        _write_plain(sys.stderr, message)
    else:
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
