"""`diff --deep`: variables from the checkpoint index, files by checksum; every change internal.

Kept apart from the interface comparison because it reads more than the
protos (the index, every asset file) and clients never see what it finds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from smsurgery.core.checkpoint_index import IndexEntry
from smsurgery.core.errors import CorruptModel
from smsurgery.core.model import (
    SavedModelFile,
)
from smsurgery.inspect.diff_changes import INTERNAL, Change, compare_members, presence

FILE_FOLDERS = ("assets", "assets.extra")


def compare_variables(old: SavedModelFile, new: SavedModelFile) -> list[Change]:
    """Names, dtypes, shapes, sizes and value checksums (crc32c) of every variable; all internal."""
    return compare_members(
        "variable",
        _variables(old),
        _variables(new),
        key_field="name",
        verdicts=(INTERNAL, INTERNAL),
        interface=lambda e: (e.dtype, e.shape, e.size, e.crc32c),
        to_json=_variable_json,
        both=_variable_changes,
    )


def _variable_changes(name: str, old: IndexEntry, new: IndexEntry) -> list[Change]:
    fields: list[tuple[str, Any, Any]] = []
    if old.dtype != new.dtype:
        fields.append(("dtype", old.dtype, new.dtype))
    if old.shape != new.shape:
        fields.append(("shape", list(old.shape), list(new.shape)))
    if not fields and old.size != new.size:  # same dtype and shape: strings of other lengths
        fields.append(("size", old.size, new.size))
    if not fields and old.crc32c != new.crc32c:
        fields.append(("values", f"crc32c:{old.crc32c:08x}", f"crc32c:{new.crc32c:08x}"))
    return [Change("variable_changed", INTERNAL, name=name, field=f, old=a, new=b) for f, a, b in fields]


def _variables(model: SavedModelFile) -> dict[str, IndexEntry]:
    return {e.name: e for e in model.variable_entries()}


def _variable_json(entry: IndexEntry) -> dict[str, Any]:
    return {"dtype": entry.dtype, "shape": list(entry.shape), "bytes": entry.size}


def compare_files(old: SavedModelFile, new: SavedModelFile) -> list[Change]:
    """Files under assets/ and assets.extra/, by sha256; all internal."""
    old_files, new_files = _file_digests(old), _file_digests(new)
    changes: list[Change] = []
    for path in sorted(old_files.keys() | new_files.keys()):
        changes += presence(
            "file", old_files.get(path), new_files.get(path), (INTERNAL,) * 3, name=path, field="sha256"
        )
    return changes


def _file_digests(model: SavedModelFile) -> dict[str, str]:
    return {
        entry.path: _sha256(model.path / entry.path) for folder in FILE_FOLDERS for entry in model.files_under(folder)
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise CorruptModel(f"cannot read {path}: {error.strerror}") from error
    return digest.hexdigest()
