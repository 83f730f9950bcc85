"""Which signatures an edit could have changed: the ones verification must run.

Running a signature in the old and the new version proves the new one
computes what the old did. When the proof is already in the files, running
is waste (and, for a 1 GB graph, minutes and gigabytes). A signature of the
new version is *untouched* when all of these hold, checked on the files:

- both meta graphs' `graph_def` bytes are identical (every node and every
  function body, so the signature's wrapper function and every function it
  reaches are byte-identical);
- its SignatureDef equals the one of the old key it came from, and every
  alias maps to itself (only keys were permuted or renamed);
- `saver_def`, `collection_def` (init and main ops, assets), `asset_file_def`
  and the init op's signature are equal;
- on TF2 exports, the object graph binds the new key to an equal object
  node with an equal concrete function.

Verification then runs only the other signatures; the new version is still
loaded by each loader (it must load as Serving loads it, and
`tf.saved_model.load` must list the same keys).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smsurgery.core.model import SavedModelFile, read
from smsurgery.edits import objectgraph

_CHUNK = 16 << 20


def same_graph_bytes(old: SavedModelFile, new: SavedModelFile, old_position: int, new_position: int) -> bool:
    """Whether the two meta graphs' graph_def payloads are byte-identical (compared in chunks, from the files)."""
    if old.skimmed is None or new.skimmed is None:
        return False
    spans_a = old.skimmed.file_layout.meta_graphs[old_position].graph_spans
    spans_b = new.skimmed.file_layout.meta_graphs[new_position].graph_spans
    if [s.end - s.body for s in spans_a] != [s.end - s.body for s in spans_b]:
        return False
    old.skimmed.whole(), new.skimmed.whole()  # remote files read by ranges: their bytes are compared here
    # pread, not the mmaps: mapped pages would count in this process's RSS while TensorFlow loads.
    with open(old.skimmed.path, "rb") as file_a, open(new.skimmed.path, "rb") as file_b:
        for span_a, span_b in zip(spans_a, spans_b, strict=True):
            for offset in range(0, span_a.end - span_a.body, _CHUNK):
                length = min(_CHUNK, span_a.end - span_a.body - offset)
                chunk_a = os.pread(file_a.fileno(), length, span_a.body + offset)
                if chunk_a != os.pread(file_b.fileno(), length, span_b.body + offset):
                    return False
    return True


def _context_equal(before: Any, after: Any) -> bool:
    init = objectgraph.INIT_OP_SIGNATURE
    return (
        before.saver_def == after.saver_def
        and dict(before.collection_def) == dict(after.collection_def)
        and list(before.asset_file_def) == list(after.asset_file_def)
        and (before.signature_def.get(init) == after.signature_def.get(init))
    )


def _same_binding(before: Any, after: Any, old_key: str, new_key: str) -> bool:
    """TF2: the object graph serves `new_key` by the same node and function as it served `old_key`."""
    has_a, has_b = objectgraph.has_object_graph(before), objectgraph.has_object_graph(after)
    if not has_a and not has_b:
        return True
    if has_a != has_b:
        return False
    child_a = objectgraph.signature_children(before).get(old_key)
    child_b = objectgraph.signature_children(after).get(new_key)
    if child_a is None or child_b is None:
        return False
    node_a = before.object_graph_def.nodes[child_a.node_id]
    node_b = after.object_graph_def.nodes[child_b.node_id]
    if node_a != node_b:
        return False
    functions_a, functions_b = before.object_graph_def.concrete_functions, after.object_graph_def.concrete_functions
    return all(functions_a.get(name) == functions_b.get(name) for name in objectgraph.concrete_function_names(node_a))


def untouched_signatures(old_dir: Path, new_dir: Path, tags: tuple[str, ...], pairs: Sequence[Any]) -> set[str]:
    """Keys of the new version whose computation is provably the old one's (see the module docstring)."""
    old, new = read(old_dir), read(new_dir)
    meta_a, meta_b = old.meta_graph(tags), new.meta_graph(tags)
    before, after = meta_a.skim, meta_b.skim
    if not _context_equal(before, after) or not same_graph_bytes(old, new, meta_a.position, meta_b.position):
        return set()
    found = set()
    for pair in pairs:
        if pair.old is None or pair.old not in before.signature_def or pair.new not in after.signature_def:
            continue
        identity = all(new == origin for side in (pair.inputs, pair.outputs) for new, origin in side.items())
        if (
            identity
            and before.signature_def[pair.old] == after.signature_def[pair.new]
            and _same_binding(before, after, pair.old, pair.new)
        ):
            found.add(pair.new)
    return found
