"""Who owns a process's cache folder in /tmp, and removing those whose owner was killed.

Each process that reads or writes a bucket keeps its mirrors and staged
versions in one temporary folder, removed at exit; a process killed with
SIGKILL (or by the OOM killer) cannot remove it, and it may hold gigabytes
of downloaded shards. So each folder records its owner: pid, the start
time of that pid's process (a recycled pid is another process) and the
pid namespace (pids of another container on a shared /tmp mean nothing
here). The next process removes folders whose owner is provably dead:
same namespace, and no process with that pid and start time. A folder it
cannot judge (no owner record, another namespace, another user) is left
alone: a live process's cache is never removed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

PREFIX = "smsurgery-remote-"
OWNER_FILE = ".owner.json"


def _stat(pid: int) -> tuple[str, str] | None:
    """State and start time (clock ticks since boot) of process `pid`, from /proc; None where /proc is not."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # after "pid (comm)": field 3 (state) is index 0
    return fields[0], fields[19]  # field 22: starttime


def _start_time(pid: int) -> str | None:
    found = _stat(pid)
    return found[1] if found is not None else None


def _namespace() -> str | None:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def claim(folder: Path) -> None:
    """Record this process as the owner of `folder`."""
    pid = os.getpid()
    record = {"pid": pid, "start": _start_time(pid), "namespace": _namespace()}
    (folder / OWNER_FILE).write_text(json.dumps(record))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def owner_is_dead(folder: Path) -> bool:
    """True only when the folder's owner is known and no longer runs (in this pid namespace)."""
    try:
        record = json.loads((folder / OWNER_FILE).read_text())
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no record (yet): cannot tell, so it stays
    if record.get("namespace") != _namespace() or pid == os.getpid():
        return False
    if not _alive(pid):
        return True
    found = _stat(pid)
    if found is None:
        return False  # no /proc: the pid exists, that is all we know
    state, started = found
    if state in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    return record.get("start") not in (None, started)  # the pid was recycled by another process


def clean_dead(where: Path) -> list[Path]:
    """Remove the cache folders in `where` whose owner is dead; the folders removed."""
    removed = []
    try:
        candidates = sorted(where.glob(PREFIX + "*"))
    except OSError:
        return []
    for folder in candidates:
        if folder.is_dir() and not folder.is_symlink() and owner_is_dead(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
