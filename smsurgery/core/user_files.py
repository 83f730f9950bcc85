"""Read the files a user names (or stdin) without hanging and without eating memory.

`request -i x=@FILE`, `run --body FILE` and `signature apply FILE` read a
whole file into memory. A user (or a script) can point them at `/dev/zero`,
at a FIFO nobody writes to, at a closed stdin, or at a 40 GB file by
mistake; `Path.read_bytes()` would then read forever, block forever or take
all the memory. Here the file type is checked first (a device or a socket
is refused), a regular file's size is compared with the limit before it is
opened, and a FIFO or stdin is read at most `limit + 1` bytes, so an endless
stream ends in a clear error. A FIFO is opened without blocking: one that
gets no writer within `WRITER_GRACE` seconds is refused instead of waited
for forever.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from pathlib import Path

from smsurgery.core.errors import SmsurgeryError

STDIN = "-"
BODY_LIMIT = 64 << 20  # a REST body, or one --input value: Serving's own bodies stay far below
EDITS_LIMIT = 4 << 20  # a JSON list of signature edits: thousands of edits fit in 4 MiB

WRITER_GRACE = 2.0  # seconds a FIFO without a writer is given to get one

_CHUNK = 1 << 20


def size_text(count: int) -> str:
    return f"{count / (1 << 20):.0f} MiB" if count >= 1 << 20 else f"{count} bytes"


def special_kind(mode: int) -> str | None:
    """What a file that is neither a regular file nor a folder is, or None for those two."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def read_user_file(source: str | Path, *, what: str, limit: int, error: type[SmsurgeryError] = SmsurgeryError) -> bytes:
    """The bytes of `source` (a path, or `-` for stdin), at most `limit` of them, or `error` saying why not."""
    if str(source) == STDIN:
        return _read_stdin(what, limit, error)
    path = Path(source).expanduser()
    try:
        info = os.stat(path)
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from failure
    if stat.S_ISDIR(info.st_mode):
        raise error(f"cannot read {what} {path}: it is a folder, not a file")
    kind = special_kind(info.st_mode)
    if kind is not None and not stat.S_ISFIFO(info.st_mode):
        raise error(f"cannot read {what} {path}: it is {kind}, not a file")
    if stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise error(f"{what} {path} is {size_text(info.st_size)}; the limit is {size_text(limit)}")
    flags = os.O_RDONLY | (os.O_NONBLOCK if kind is not None else 0)
    try:
        fd = os.open(path, flags)
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from failure
    try:
        data = _read_fifo(fd, limit) if kind is not None else _read_bounded(fd, limit)
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from failure
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{what} {path} is larger than the limit of {size_text(limit)}")
    if not data and kind is not None:
        raise error(f"{what} {path} is {kind} that nobody wrote to within {WRITER_GRACE:g} s")
    return data


def _read_stdin(what: str, limit: int, error: type[SmsurgeryError]) -> bytes:
    closed = error(f"cannot read {what} from stdin (-): stdin is closed")
    if sys.stdin is None:  # the interpreter started with file descriptor 0 closed
        raise closed
    try:
        fd = sys.stdin.fileno()
        data = _read_bounded(fd, limit)
    except (OSError, ValueError) as failure:
        if isinstance(failure, OSError) and failure.errno not in (errno.EBADF, None):
            raise error(f"cannot read {what} from stdin: {failure.strerror}") from failure
        raise closed from failure
    if len(data) > limit:
        raise error(f"{what} on stdin is larger than the limit of {size_text(limit)}")
    return data


def _read_fifo(fd: int, limit: int) -> bytes:
    """Read a FIFO opened without blocking: wait for a writer only `WRITER_GRACE` seconds.

    On a non-blocking FIFO, read() returns b"" while no writer has it open
    and fails with EAGAIN while a writer is there but has not written yet:
    the first retries (a writer may be just opening it), the second is a
    live writer, waited for as any reader would.
    """
    deadline = time.monotonic() + WRITER_GRACE
    while True:
        try:
            first = os.read(fd, min(_CHUNK, limit + 1))
        except BlockingIOError:
            break
        if first:
            os.set_blocking(fd, True)
            return first + _read_bounded(fd, limit - len(first))
        if time.monotonic() > deadline:
            return b""
        time.sleep(0.02)
    os.set_blocking(fd, True)
    return _read_bounded(fd, limit)


def _read_bounded(fd: int, limit: int) -> bytes:
    """Up to `limit + 1` bytes: one more than allowed tells 'too large' from 'exactly the limit'."""
    parts: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(_CHUNK, left))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
