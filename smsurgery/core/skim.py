"""Read a `saved_model.pb` without its graphs: walk the wire format, parse only the small fields.

A frozen model's `saved_model.pb` can be 1 GB, and nearly all of it is
`MetaGraphDef.graph_def` (field 2: nodes, constants, and every function
body of a TF2 export). `show`, `diff` and `request` need the other fields:
`meta_info_def` (1), `saver_def` (3), `collection_def` (4),
`signature_def` (5), `asset_file_def` (6) and `object_graph_def` (7). So
we walk the tags of `SavedModel` {schema version = 1, meta_graphs = 2} and
of each `MetaGraphDef` ourselves, through a read-only mmap, seek past every
`graph_def`, and hand the bytes of the other fields to protobuf. Pages of
the graph are never touched; memory stays roughly constant in graph size.

The walk also records where each field lies (`FieldSpan`), which is what
`splice` needs to copy untouched fields byte for byte. Anything the walk
does not understand (a group, a truncated length) returns None and the
caller parses the whole file as before, so error messages do not change.

The bytes come from a read-only mmap, or, for a remote `saved_model.pb`
not downloaded yet, from a random-access view that fetches byte ranges
(`core.lazy_files`): the same walk reads both. Whatever needs the graph
asks `Skim.whole()` first, which downloads the file once and maps it.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.core import lazy_files, protos
from smsurgery.core.wire import LENGTH_DELIMITED, FieldSpan, walk_fields

META_GRAPHS = 2  # SavedModel.meta_graphs
GRAPH_DEF = 2  # MetaGraphDef.graph_def


@dataclass(frozen=True)
class MetaGraphLayout:
    """A `meta_graphs` occurrence of the file and the fields inside it, in file order."""

    span: FieldSpan
    fields: tuple[FieldSpan, ...]

    @property
    def graph_spans(self) -> tuple[FieldSpan, ...]:
        return tuple(f for f in self.fields if f.number == GRAPH_DEF and f.wire_type == LENGTH_DELIMITED)

    @property
    def graph_bytes(self) -> int:
        return sum(f.end - f.body for f in self.graph_spans)


@dataclass(frozen=True)
class FileLayout:
    """Where every top-level field and every meta graph's fields lie in the file."""

    size: int
    fields: tuple[FieldSpan, ...]  # top level, in file order
    meta_graphs: tuple[MetaGraphLayout, ...]


def layout(data: Any) -> FileLayout | None:
    """Walk `SavedModel` and each `MetaGraphDef`; None when protobuf should judge the bytes."""
    top = walk_fields(data, 0, len(data))
    if top is None:
        return None
    metas = []
    for span in top:
        if span.number == META_GRAPHS:
            if span.wire_type != LENGTH_DELIMITED:
                return None
            inner = walk_fields(data, span.body, span.end)
            if inner is None:
                return None
            metas.append(MetaGraphLayout(span, tuple(inner)))
    return FileLayout(len(data), tuple(top), tuple(metas))


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def length_delimited(number: int, payload_length: int) -> bytes:
    """The tag and length that precede a length-delimited field of `payload_length` bytes."""
    return _encode_varint(number << 3 | LENGTH_DELIMITED) + _encode_varint(payload_length)


def small_meta_bytes(data: Any, meta: MetaGraphLayout) -> bytes:
    """The meta graph's bytes without `graph_def`: every other field, verbatim, in file order."""
    return b"".join(bytes(data[f.start : f.end]) for f in meta.fields if f not in meta.graph_spans)


def graph_def_bytes(data: Any, meta: MetaGraphLayout) -> bytes:
    """The payload of `graph_def` (several occurrences merge, as protobuf merges them)."""
    return b"".join(bytes(data[f.body : f.end]) for f in meta.graph_spans)


@dataclass
class Skim:
    """A `saved_model.pb` opened for reading: its layout, the small fields parsed, the graph on demand."""

    path: Path
    data: Any  # an mmap, bytes, or a ranged view of a remote file (len, [i], [a:b])
    file_layout: FileLayout
    saved_model: Any  # a SavedModel whose meta graphs have no graph_def

    def graph_def(self, position: int) -> Any:
        """Meta graph `position`'s GraphDef, parsed from the file (the caller caches it)."""
        graph = protos.graph_def_class()()
        meta = self.file_layout.meta_graphs[position]
        data = self.whole()
        if len(meta.graph_spans) == 1:  # parse from the mapping itself: no copy of a 1 GB graph in bytes
            span = meta.graph_spans[0]
            with memoryview(data) as whole, whole[span.body : span.end] as view:
                graph.ParseFromString(view)
        else:
            graph.ParseFromString(graph_def_bytes(data, meta))
        self.release()
        return graph

    def whole(self) -> Any:
        """The file's bytes, all of them local: a remote file read by ranges is downloaded first, once."""
        if not isinstance(self.data, mmap.mmap | bytes):
            lazy_files.ensure_whole(self.path)
            mapped = _open(self.path)
            if mapped is None:
                raise ValueError(f"{self.path} cannot be mapped")
            self.data = mapped
        return self.data

    def release(self) -> None:
        """Drop the file's pages from this process's resident set (they stay in the page cache)."""
        if isinstance(self.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self.data.madvise(mmap.MADV_DONTNEED)


def _open(path: Path) -> Any:
    ranged = lazy_files.view(path)
    if ranged is not None:
        return ranged if len(ranged) else None
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size == 0:
                return None
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None  # unreadable or not mmap-able (a pipe): the full parse reports it


def skim(path: Path) -> Skim | None:
    """The small fields of a binary `saved_model.pb`, or None to fall back to a full parse."""
    if path.suffix == ".pbtxt":
        return None
    data = _open(path)
    if data is None:
        return None
    found = layout(data)
    if found is None or not found.meta_graphs:
        return None
    parts = []
    for span in found.fields:
        if span.number != META_GRAPHS:
            parts.append(bytes(data[span.start : span.end]))
    for meta in found.meta_graphs:
        payload = small_meta_bytes(data, meta)
        parts.append(length_delimited(META_GRAPHS, len(payload)) + payload)
    saved_model = protos.SavedModel()
    try:
        saved_model.ParseFromString(b"".join(parts))
    except Exception:
        return None
    return Skim(path=path, data=data, file_layout=found, saved_model=saved_model)
