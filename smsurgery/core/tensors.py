"""Tensors of a meta graph's main graph: does `op:i` exist, and its dtype and shape.

Signature edits take tensor *names* from the user and the dtype and shape
from the graph, never from the user: a signature that declares a dtype its
tensor does not have loads fine and fails only when a client calls it.
The facts about one node's outputs are in `node_outputs` (re-exported here);
names are parsed by the graph model's one parser (`graphmodel.parse_input`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InvalidName, TensorNotFound
from smsurgery.core.graphmodel import GraphModel, parse_input
from smsurgery.core.model import shape_of, shape_text
from smsurgery.core.node_outputs import REF_OFFSET, base_dtype, output_count, output_dtypes, output_shape

__all__ = [
    "REF_OFFSET", "GraphIndex", "GraphTensor", "base_dtype", "output_count", "output_dtypes", "output_shape",
    "proto_shape_text", "same_shape", "split_tensor_name", "unfed_placeholders",
]  # fmt: skip


@dataclass(frozen=True)
class GraphTensor:
    """One output of a node in the main graph."""

    name: str  # canonical "node:index"
    node: str
    index: int
    op: str
    dtype: int | None  # DataType number; None if not knowable without the op registry
    shape: Any  # TensorShapeProto (unknown_rank when not knowable)

    @property
    def dtype_name(self) -> str:
        return protos.dtype_name(self.dtype) if self.dtype is not None else "unknown"


def split_tensor_name(text: str) -> tuple[str, int]:
    """`x` -> ("x", 0), `x:1` -> ("x", 1); anything else is not a tensor name."""
    try:
        parsed = parse_input(text, in_function=False)
    except InvalidName:
        parsed = None
    if parsed is None or parsed.control:
        raise InvalidName(f"'{text}' is not a tensor name", hint="expected NODE or NODE:INDEX, e.g. dense/BiasAdd:0")
    return parsed.node, parsed.index


class GraphIndex:
    """Tensors of a meta graph's main `graph_def`, by name (the main scope of its graph model)."""

    def __init__(self, model: GraphModel) -> None:
        self.model = model
        self.nodes: dict[str, Any] = model.main.nodes

    def tensor(self, text: str) -> GraphTensor:
        """The tensor `text` names; `TensorNotFound` with close names if there is none."""
        node_name, index = split_tensor_name(text)
        node = self.nodes.get(node_name)
        if node is None:
            raise TensorNotFound(f"no tensor '{text}' in the graph", hint=self._suggest(node_name))
        count = output_count(node)
        if count is not None and index >= count:
            outputs = ", ".join(f"{node_name}:{i}" for i in range(count)) or "none"
            raise TensorNotFound(
                f"node '{node_name}' ({node.op}) has {count} output(s); there is no '{node_name}:{index}'",
                hint=f"its outputs: {outputs}",
            )
        dtypes = output_dtypes(node)
        dtype = dtypes[index] if dtypes is not None and index < len(dtypes) else None
        return GraphTensor(
            name=f"{node_name}:{index}", node=node_name, index=index, op=node.op, dtype=dtype,
            shape=output_shape(node, index),
        )  # fmt: skip

    def exists(self, text: str) -> bool:
        try:
            self.tensor(text)
        except (TensorNotFound, InvalidName):
            return False
        return True

    def _suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.nodes), n=5, cutoff=0.5)
        if close:
            return "close names: " + ", ".join(f"{c}:0" for c in close)
        return f"the graph has {len(self.nodes)} nodes; `smsurgery tensors PATH` lists the tensors it computes"


def proto_shape_text(shape: Any) -> str:
    """A TensorShapeProto in the same words as everything else smsurgery prints."""
    return shape_text(shape_of(shape))


def same_shape(a: Any, b: Any) -> bool:
    if a.unknown_rank or b.unknown_rank:
        return a.unknown_rank == b.unknown_rank
    return [d.size for d in a.dim] == [d.size for d in b.dim]


def unfed_placeholders(index: GraphIndex, outputs: list[str], fed: list[str]) -> list[str]:
    """Placeholders that computing `outputs` needs while feeding only `fed`.

    A signature whose outputs depend on a placeholder that is not one of its
    inputs loads fine and fails on every request ("You must feed a value for
    placeholder tensor"); `tf.saved_model.load` refuses it outright for a
    TF1-style export. Walks data and control inputs back from the outputs,
    stopping at fed nodes.
    """
    fed_nodes = {split_tensor_name(name)[0] for name in fed if name}
    needed = index.model.upstream("", [split_tensor_name(name)[0] for name in outputs if name], stop=fed_nodes)
    return sorted(n for n in needed - fed_nodes if index.nodes[n].op == "Placeholder")
