"""Files that exist locally by name and size only, their bytes fetched on demand.

A mirror of a remote version (see `smsurgery.storage.mirror`) leaves a big
`saved_model.pb` as a sparse placeholder of the listed size: `show`, `diff`
and `request` need only its small fields, which the skim reads through a
random-access view that fetches byte ranges. Everything that reads the
whole file (a full parse, the graph, a fingerprint, a splice, TensorFlow)
calls `ensure_whole` first, which downloads it into place once. Core code
knows only this registry; the storage layer fills it, so reading a local
file never depends on the storage layer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol


class LazySource(Protocol):
    """Where a placeholder's bytes come from."""

    def view(self) -> Any:
        """A random-access view of the bytes (`len`, `view[i]`, `view[a:b]`), fetched as they are read."""
        ...

    def fetch(self) -> None:
        """Write the whole file into the placeholder, in place."""
        ...


_LAZY: dict[Path, LazySource] = {}
_LOCK = threading.Lock()  # guards the two maps, never held during a download
_FETCHING: dict[Path, threading.Lock] = {}  # one per file: two threads never write one placeholder at once


def _key(path: Path) -> Path:
    return Path(path).resolve()


def register(path: Path, source: LazySource) -> None:
    with _LOCK:
        _LAZY[_key(path)] = source


def forget(path: Path) -> None:
    """The placeholder holds its real bytes now (or is gone): read it as any file."""
    with _LOCK:
        _LAZY.pop(_key(path), None)


def is_lazy(path: Path) -> bool:
    return _key(path) in _LAZY


def view(path: Path) -> Any | None:
    """A random-access view of a placeholder's bytes, or None for a file whose bytes are here."""
    with _LOCK:
        source = _LAZY.get(_key(path))
    return source.view() if source is not None else None


def ensure_whole(path: Path) -> None:
    """Make the file's bytes local before a reader opens it (no-op for an ordinary file)."""
    key = _key(path)
    with _LOCK:
        if key not in _LAZY:
            return
        fetching = _FETCHING.setdefault(key, threading.Lock())
    with fetching:
        with _LOCK:
            source = _LAZY.get(key)  # None: another thread fetched it while this one waited
        if source is not None:
            source.fetch()
            forget(path)
