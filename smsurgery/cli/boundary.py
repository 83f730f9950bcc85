"""What the process does at its edges: termination signals and a stdout that fails.

`kill`, `timeout`, Docker and Kubernetes stop a process with SIGTERM; a
closed terminal sends SIGHUP. Python's default for both is to die on the
spot, leaving a staging folder with a partial copy. Here they (and SIGINT)
raise `Terminated` in the main thread, as SIGINT raises KeyboardInterrupt, so the
publisher's cleanup runs (`staged_version` removes its staging folder on any
exception) and `main` prints one line and exits with 128 + N, as a shell
reports a signal. A signal that was ignored when we started (`nohup`) stays
ignored.

A stdout that fails (`> /dev/full`, a reader that went away) raises
`StdoutFailed` at the write or at the final flush; a writing command that
published before its report failed must say so, or a script that retries
would publish the same edit twice.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PUBLISHED_BUT_UNREPORTED = 4  # exit status: the version is there, the report of it is not
STATE: dict[str, Any] = {"debug": False, "signal": None}  # debug: set by `--debug`; signal: the first one that arrived


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; a BaseException so that `except Exception` blocks let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StdoutFailed(BaseException):
    """Writing or flushing stdout failed; a BaseException so that click does not swallow EPIPE."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


def _terminate(signum: int, _frame: Any) -> None:
    for other in (*HANDLED_SIGNALS, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)  # a second signal must not interrupt the cleanup
    STATE["signal"] = signum
    raise Terminated(signum)


def as_termination(error: BaseException) -> BaseException:
    """The exception to report for `error`: `Terminated` if a signal arrived before it.

    `Terminated` is raised wherever the main thread happens to be, and code we
    do not own may turn it into something else on its way out: a pybind11
    module being imported reports it as ImportError("initialization
    failed"), and TensorFlow's import shims re-raise that as RuntimeError.
    Whatever escapes after a signal is the signal's doing.
    """
    signum = STATE["signal"]
    if signum is None or isinstance(error, Terminated) or (isinstance(error, SystemExit) and not error.code):
        return error
    return Terminated(signum)


def install_signal_handlers() -> None:
    for signum in HANDLED_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        # Typer turns KeyboardInterrupt into a silent exit 130; this way SIGINT gets its line too.
        signal.signal(signal.SIGINT, _terminate)


def signal_message(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"


class _GuardedStdout:
    """sys.stdout, with write and flush failures turned into `StdoutFailed`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise StdoutFailed(error) from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise StdoutFailed(error) from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_stdout() -> None:
    if sys.stdout is not None and not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = _GuardedStdout(sys.stdout)


def flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the interpreter's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def published_paths() -> list[Any]:
    """Versions this process published (none if the publisher was never imported)."""
    publish = sys.modules.get("smsurgery.publishing.atomic")
    return list(getattr(publish, "PUBLISHED", []))


def published_note() -> str:
    paths = published_paths()
    return "; the new version WAS published: " + ", ".join(str(p) for p in paths) if paths else ""


def os_error_text(error: OSError) -> str:
    """`File name too long (5000 characters): aaaa…` — a path shortened so the line stays readable."""
    name = os.fsdecode(error.filename) if isinstance(error.filename, (str, bytes)) else ""
    if len(name) > 80:
        name = f"{name[:60]}… ({len(name)} characters)"
    return f"{error.strerror or error}: {name}" if name else str(error.strerror or error)
