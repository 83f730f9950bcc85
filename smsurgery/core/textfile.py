"""Read a small configuration text file without trusting what the path is.

A batching parameters file or a models.config is a few kilobytes. A path
that names a FIFO would block forever and `/dev/zero` would be read until
memory runs out, so only regular files are read, and only up to a limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from smsurgery.core.errors import SmsurgeryError

MAX_CONFIG_BYTES = 16 * 2**20


def read_config_text(path: Path, what: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The file's text, or one line saying why not (missing, not a regular file, too big, not UTF-8)."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise SmsurgeryError(f"cannot read {what} {path}: {error.strerror}") from error
    if not stat.S_ISREG(info.st_mode):
        raise SmsurgeryError(f"{what} {path} is not a regular file")
    if info.st_size > limit:
        raise SmsurgeryError(f"{what} {path} is {info.st_size} bytes; more than {limit} is not a config file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise SmsurgeryError(f"cannot read {what} {path}: {error.strerror}") from error
    if len(data) > limit:
        raise SmsurgeryError(f"{what} {path} grew past {limit} bytes while being read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SmsurgeryError(f"{what} {path} is not UTF-8 text (byte {error.start})") from error
