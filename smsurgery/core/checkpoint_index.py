"""Read a checkpoint's `variables.index` without TensorFlow.

The index is a LevelDB-style sorted table (tensorflow/core/lib/io/table):
a footer points at an index block, whose entries point at data blocks of
prefix-compressed key/value pairs. Key "" holds a `BundleHeaderProto`; every
other key is a tensor name with a `BundleEntryProto` (dtype, shape, shard,
offset, size). That is all `show` and `diff --deep` need: names, dtypes,
shapes and byte counts, without loading a single value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from smsurgery.core import protos
from smsurgery.core.errors import CorruptModel
from smsurgery.core.wire import read_varint

_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER = 5
# Holds the serialized object graph of a TF2 checkpoint, not a variable.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclass(frozen=True)
class IndexEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int


def _block(data: bytes, offset: int, size: int) -> bytes:
    end = offset + size
    if offset < 0 or end + _BLOCK_TRAILER > len(data):
        raise ValueError("block outside the file")
    compression = data[end]
    if compression == 0:
        return data[offset:end]
    if compression == 1:
        return snappy_decompress(data[offset:end])
    raise ValueError(f"block compressed with unknown type {compression}")


def snappy_decompress(data: bytes) -> bytes:
    """Raw Snappy (TensorFlow's default table compression), in pure Python."""
    length, pos = read_varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > len(data):
                raise ValueError("snappy literal past the end")
            out += data[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            size = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise ValueError("snappy copy before the start")
        for _ in range(size):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != length:
        raise ValueError("snappy length mismatch")
    return bytes(out)


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ValueError("block too short")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise ValueError("bad restart count")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_length, pos = read_varint(block, pos)
        if shared > len(key) or pos + non_shared + value_length > limit:
            raise ValueError("entry outside its block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def _table_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < _FOOTER_SIZE:
        raise ValueError("file shorter than a table footer")
    footer = data[-_FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != _MAGIC:
        raise ValueError("bad table magic number")
    pos = 0
    _meta_offset, pos = read_varint(footer, pos)
    _meta_size, pos = read_varint(footer, pos)
    index_offset, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    entries: list[tuple[bytes, bytes]] = []
    for _last_key, handle in _block_entries(_block(data, index_offset, index_size)):
        block_offset, hpos = read_varint(handle, 0)
        block_size, _ = read_varint(handle, hpos)
        entries.extend(_block_entries(_block(data, block_offset, block_size)))
    return entries


def read_index(path: Path) -> list[IndexEntry]:
    """Entries of a `variables.index`, the object-graph entry included."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorruptModel(f"cannot read {path}: {error.strerror}") from error
    entry_class = protos.bundle_entry_class()
    result: list[IndexEntry] = []
    try:
        for key, value in _table_entries(data):
            if key == b"":
                continue  # the BundleHeaderProto
            entry = entry_class.FromString(value)
            result.append(
                IndexEntry(
                    name=key.decode("utf-8", errors="replace"),
                    dtype=protos.dtype_name(entry.dtype),
                    shape=tuple(dim.size for dim in entry.shape.dim),
                    shard_id=entry.shard_id,
                    offset=entry.offset,
                    size=entry.size,
                    crc32c=entry.crc32c,
                )
            )
    except Exception as error:
        raise CorruptModel(f"{path} is not a valid checkpoint index: {error}") from error
    return result
