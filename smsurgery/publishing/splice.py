"""Write an edited `saved_model.pb` by copying the untouched graphs byte for byte from the source.

An edit that changes only signature maps, tags, collections or the object
graph's signature map never needs the graph: it is applied to the skimmed
small fields (see `skim`), and the new file is written as

    SavedModel fields before meta_graphs (schema version), deterministic
    for each meta graph: tag + length, then its fields in field-number order:
        meta_info_def (1)                  deterministic serialization of the edited one
        graph_def (2)                      copied from the source file (copy_file_range)
        saver_def .. object_graph_def (3-7) deterministic serialization of the edited ones

which is exactly the layout of `SerializeToString(deterministic=True)` of
the whole edited model, so the result is byte-identical to today's full
re-serialization whenever the source's own graph bytes are deterministic
(TensorFlow writes them so), and parses equal in every case. The graph
bytes go from file to file in the kernel and never through Python memory.

`can_splice` says which edits qualify: rename, remove and set-default of
signatures (they touch `signature_def` and the object graph's signature
map only), and on exports without an object graph also alias renames and
output removals. Anything else takes the full route.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InternalError
from smsurgery.core.skim import GRAPH_DEF, META_GRAPHS, Skim, length_delimited
from smsurgery.core.wire import FieldSpan, walk_fields
from smsurgery.edits import objectgraph

# Edits that never read or write graph_def, on any export.
_SIGNATURE_MAP_EDITS = frozenset({"RenameSignature", "RemoveSignature", "SetDefault"})
# Edits that never read or write graph_def on exports without an object graph.
_TF1_EDITS = frozenset({"RenameAlias", "RemoveOutput"})


def can_splice(skimmed: Skim | None, meta: Any, edits: Sequence[Any], *, drop_object_graph: bool) -> bool:
    """Whether `edits` on MetaGraphDef `meta` (skimmed) change small fields only."""
    if skimmed is None:
        return False
    tf1 = drop_object_graph or not objectgraph.has_object_graph(meta)
    allowed = _SIGNATURE_MAP_EDITS | (_TF1_EDITS if tf1 else frozenset())
    return (bool(edits) or drop_object_graph) and all(type(e).__name__ in allowed for e in edits)


def tensor_references(meta: Any) -> set[tuple[str, int]]:
    """(tensor name, declared dtype) of every signature input and output (init op excluded)."""
    found: set[tuple[str, int]] = set()
    for key, signature in meta.signature_def.items():
        if key == objectgraph.INIT_OP_SIGNATURE:
            continue
        for side in (signature.inputs, signature.outputs):
            for info in side.values():
                found.update((name, info.dtype) for name in objectgraph.tensor_info_names(info))
    return found


def small_edit_problems(before: Any, after: Any) -> list[str]:
    """What a small-field edit could have broken, proved without the graph.

    Every validation finding about tensors depends only on (tensor name,
    declared dtype), so when the edited signatures name no pair the source's
    did not, the edit cannot have added one. The object graph's signature
    map must still list exactly the signature keys.
    """
    found = []
    added = tensor_references(after) - tensor_references(before)
    if added:
        found.append(f"the edit names tensors the source's signatures did not: {sorted(added)}")
    if objectgraph.has_object_graph(after):
        tf1 = {k for k in after.signature_def if k != objectgraph.INIT_OP_SIGNATURE}
        tf2 = set(objectgraph.signature_children(after))
        if tf1 != tf2:
            found.append(f"signature_def lists {sorted(tf1)} but the object graph lists {sorted(tf2)}")
    return found


def _split_before(serialized: bytes, number: int) -> int:
    """Offset of the first top-level field numbered above `number` (deterministic order is by number)."""
    spans = walk_fields(serialized, 0, len(serialized))
    if spans is None:
        raise InternalError("cannot walk a message protobuf just serialized")
    return next((s.start for s in spans if s.number > number), len(serialized))


def _copy_range(source_fd: int, target_fd: int, offset: int, count: int) -> None:
    """Kernel-side copy of `count` bytes at `offset` of the source to the target's current position."""
    while count > 0:
        try:
            done = os.copy_file_range(source_fd, target_fd, count, offset)
        except OSError:  # other file systems, older kernels: sendfile works between regular files
            done = os.sendfile(target_fd, source_fd, offset, count)
        if done <= 0:
            raise InternalError("the source saved_model.pb ended while its graph was being copied")
        offset, count = offset + done, count - done


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_spliced(skimmed: Skim, edited: Any, target: Path) -> None:
    """Write SavedModel `edited` (meta graphs without graph_def) with the source's graphs spliced in."""
    sources = skimmed.file_layout.meta_graphs
    if len(edited.meta_graphs) != len(sources):
        raise InternalError("a spliced edit changed the number of meta graphs")
    top = type(edited)()
    top.CopyFrom(edited)
    top.ClearField("meta_graphs")
    head = top.SerializeToString(deterministic=True)
    head_split = _split_before(head, META_GRAPHS)
    target.parent.mkdir(parents=True, exist_ok=True)
    skimmed.whole()  # the graphs are copied from the file: a remote one read by ranges is downloaded now
    with open(skimmed.path, "rb") as source:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, head[:head_split])
            for meta, layout in zip(edited.meta_graphs, sources, strict=True):
                if meta.HasField("graph_def"):
                    raise InternalError("a spliced edit wrote into graph_def")
                _write_meta(fd, source.fileno(), meta.SerializeToString(deterministic=True), layout.graph_spans)
            _write_all(fd, head[head_split:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_meta(fd: int, source_fd: int, small: bytes, graph_spans: tuple[FieldSpan, ...]) -> None:
    split = _split_before(small, GRAPH_DEF)
    graph_length = sum(span.end - span.body for span in graph_spans)
    graph_header = length_delimited(GRAPH_DEF, graph_length) if graph_spans else b""
    _write_all(fd, length_delimited(META_GRAPHS, len(small) + len(graph_header) + graph_length))
    _write_all(fd, small[:split] + graph_header)
    for span in graph_spans:
        _copy_range(source_fd, fd, span.body, span.end - span.body)
    _write_all(fd, small[split:])
