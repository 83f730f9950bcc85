"""A lean graph whose big nodes stay in the file: frozen weights are not copied to be skipped.

A frozen model keeps its weights in a few Const nodes of tens of MB each.
A lean parse (core/lean_graph.py) still copies each of them into memory,
as unknown bytes, to learn a name and an op type. When a graph is large
and made of few fields, we walk its wire format ourselves instead: each
node of at most `big_node` bytes is parsed lean from its own bytes, and a
bigger one becomes a `SpannedNode` (its name, op and input fields parsed
lean, the rest left in the mapped file, from which `full_node` parses the
NodeDef when asked). The library's occurrences are parsed as one
LeanLibrary (protobuf merges repeated occurrences of a message field the
same way). The walk gives up (None: the caller parses lean as before) past
`max_fields` top-level fields, on anything it does not understand, and on
graphs of more than one `graph_def` occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smsurgery.core.lean_graph import SpannedNode, lean_library_class, lean_node_class
from smsurgery.core.skim import Skim
from smsurgery.core.wire import LENGTH_DELIMITED, FieldSpan, walk_fields

BIG_GRAPH = 64 << 20  # graphs at most this big are parsed lean at once, whatever their nodes
BIG_NODE = 1 << 20  # nodes bigger than this stay in the file
MAX_FIELDS = 4096  # more top-level fields than this: a graph of many small nodes, parsed lean at once
_NODE_FIELDS = (1, 2, 3)  # NodeDef name, op, input: what a lean node holds


@dataclass
class SplitGraph:
    """What a walk reads of a GraphDef: its nodes (lean or spanned) and its library."""

    node: list[Any] = field(default_factory=list)
    library: Any = None


def _node(data: Any, span: FieldSpan, big_node: int) -> Any | None:
    lean_node = lean_node_class()
    with memoryview(data) as mapped:
        if span.end - span.body <= big_node:
            with mapped[span.body : span.end] as view:
                return lean_node.FromString(view)
        inner = walk_fields(data, span.body, span.end, limit=MAX_FIELDS)
        if inner is None:
            return None
        kept = b"".join(
            bytes(mapped[f.start : f.end])
            for f in inner
            if f.number in _NODE_FIELDS and f.wire_type == LENGTH_DELIMITED
        )
    return SpannedNode(lean_node.FromString(kept), data, span.body, span.end)


def _library(data: Any, spans: list[FieldSpan]) -> Any:
    """The library's occurrences parsed as one (as protobuf merges them), from the mapping when there is one."""
    if len(spans) != 1:
        return lean_library_class().FromString(b"".join(bytes(data[f.body : f.end]) for f in spans))
    with memoryview(data) as mapped, mapped[spans[0].body : spans[0].end] as view:
        return lean_library_class().FromString(view)


def split_graph_def(
    skimmed: Skim, position: int, *, big_graph: int = BIG_GRAPH, big_node: int = BIG_NODE, max_fields: int = MAX_FIELDS
) -> SplitGraph | None:
    """Meta graph `position`'s graph with its big nodes left in the file, or None to parse it lean at once.

    Raises protobuf's DecodeError when a node's name, op or inputs (or the library) do not parse.
    """
    meta = skimmed.file_layout.meta_graphs[position]
    if len(meta.graph_spans) != 1 or meta.graph_bytes <= big_graph:
        return None
    span, data = meta.graph_spans[0], skimmed.data
    fields = walk_fields(data, span.body, span.end, limit=max_fields)
    if fields is None:
        return None
    graph, library = SplitGraph(), []  # library: its FieldSpans
    for found in fields:
        if found.wire_type != LENGTH_DELIMITED:
            continue  # a mistyped node or library field: protobuf keeps it as unknown, and so do we
        if found.number == 1:
            node = _node(data, found, big_node)
            if node is None:
                return None
            graph.node.append(node)
        elif found.number == 2:
            library.append(found)
    graph.library = _library(data, library)
    skimmed.release()
    return graph
