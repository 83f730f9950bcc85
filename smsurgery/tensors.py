"""Tensors of a meta graph's main graph: does `op:i` exist, and its dtype and shape.

Signature edits take tensor *names* from the user and the dtype and shape
from the graph, never from the user: a signature that declares a dtype its
tensor does not have loads fine and fails only when a client calls it.
Without the TensorFlow runtime there is no op registry, so the dtype is read
from the producing node's attributes (`Tout`, `dtype`, `T`, ...), best
effort; `None` means "not knowable here", and callers refuse rather than
guess. Shapes come from `_output_shapes` (written by every exporter we know)
or the node's own `shape`/`value`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from smsurgery import protos
from smsurgery.errors import InvalidName, TensorNotFound
from smsurgery.model import shape_of, shape_text

_TENSOR_NAME = re.compile(r"^(?P<node>[^:^\s][^:\s]*)(?::(?P<index>\d+))?$")
REF_OFFSET = 100  # DT_FLOAT_REF == DT_FLOAT + 100

# Ops whose output is a reference to their `T`/`dtype` (TF1 variables and their assignments).
_REF_OUTPUT_OPS = {
    "VariableV2", "Variable", "TemporaryVariable", "Assign", "AssignAdd", "AssignSub", "RefIdentity",
    "ScatterUpdate", "ScatterAdd", "ScatterSub", "ScatterMul", "ScatterDiv", "ScatterMin", "ScatterMax",
    "ScatterNdUpdate", "ScatterNdAdd", "ScatterNdSub",
}  # fmt: skip
_BOOL_OPS = {
    "Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr",
    "LogicalNot", "IsNan", "IsInf", "IsFinite", "ApproximateEqual", "StaticRegexFullMatch", "RegexFullMatch",
    "VarIsInitializedOp", "IsVariableInitialized", "InTopKV2", "All", "Any",
}  # fmt: skip
_STRING_OPS = {
    "StringJoin", "AsString", "ReduceJoin", "EncodeBase64", "DecodeBase64", "Substr", "StringFormat",
    "RegexReplace", "StaticRegexReplace", "ShardedFilename", "ReadFile", "EncodeJpeg", "EncodePng",
    "StringLower", "StringUpper", "StringStrip", "SerializeTensor",
}  # fmt: skip
_RESOURCE_OPS = {
    "VarHandleOp", "HashTableV2", "MutableHashTableV2", "MutableHashTableOfTensorsV2",
    "MutableDenseHashTableV2", "AnonymousHashTable", "IteratorV2",
}  # fmt: skip
_FIXED = {
    "Rank": "DT_INT32", "LookupTableSizeV2": "DT_INT64", "StringLength": "DT_INT32", "Where": "DT_INT64",
    "StringToHashBucketFast": "DT_INT64", "StringToHashBucketStrong": "DT_INT64",
    "StringToHashBucket": "DT_INT64", "DecodeJpeg": "DT_UINT8",
}  # fmt: skip
# Ops whose (first) output dtype is held by an attribute other than T/dtype.
_ATTR_OUTPUT = {
    "Shape": "out_type", "Size": "out_type", "ShapeN": "out_type", "Cast": "DstT", "Bitcast": "type",
    "ArgMax": "output_type", "ArgMin": "output_type", "StringToNumber": "out_type", "DecodeRaw": "out_type",
    "ParseTensor": "out_type", "LookupTableFindV2": "Tout", "DecodePng": "dtype", "DecodeImage": "dtype",
}  # fmt: skip
_SECOND_OUTPUT = {"Unique": "out_idx", "TopKV2": "DT_INT32", "Merge": "DT_INT32", "UniqueV2": "out_idx"}
_ALL_T = {"Split", "SplitV", "Unpack", "Switch", "IdentityN"}  # every output has type T (or T[i])


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
    match = _TENSOR_NAME.match(text.strip())
    if not match:
        raise InvalidName(f"'{text}' is not a tensor name", hint="expected NODE or NODE:INDEX, e.g. dense/BiasAdd:0")
    return match["node"], int(match["index"] or 0)


def base_dtype(number: int) -> int:
    return number - REF_OFFSET if number > REF_OFFSET else number


class GraphIndex:
    """Nodes of a meta graph's main `graph_def`, by name."""

    def __init__(self, graph_def: Any, only: set[str] | None = None) -> None:
        """`only`: index just these node names (a lookup of a few tensors needs no dict of 600 k nodes)."""
        self.graph_def = graph_def
        nodes = graph_def.node
        self.nodes: dict[str, Any] = (
            {node.name: node for node in nodes} if only is None else {n.name: n for n in nodes if n.name in only}
        )

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
        return f"the graph has {len(self.nodes)} nodes; `smsurgery show --ops` lists their ops"


def output_count(node: Any) -> int | None:
    """Number of outputs, when the node says (`_output_shapes`, `Tout`)."""
    if "_output_shapes" in node.attr:
        return len(node.attr["_output_shapes"].list.shape)
    if "Tout" in node.attr and node.attr["Tout"].WhichOneof("value") == "list":
        return len(node.attr["Tout"].list.type)
    if node.op == "NoOp":
        return 0
    return None


def _attr_type(node: Any, name: str) -> int | None:
    if name.startswith("DT_"):
        return protos.dtype_numbers()[name]
    if name in node.attr and node.attr[name].WhichOneof("value") == "type":
        return int(node.attr[name].type)
    return None


def output_dtypes(node: Any) -> list[int | None] | None:
    """Dtypes of the node's outputs as far as its attributes tell; None if unknown."""
    count = output_count(node)
    op = node.op
    if "Tout" in node.attr and node.attr["Tout"].WhichOneof("value") == "list":
        return [int(t) for t in node.attr["Tout"].list.type]
    if op in ("IdentityN",) and "T" in node.attr:
        return [int(t) for t in node.attr["T"].list.type]
    if op in ("RestoreV2",) and "dtypes" in node.attr:
        return [int(t) for t in node.attr["dtypes"].list.type]
    first = _first_dtype(node)
    if first is None:
        return None
    if op in _REF_OUTPUT_OPS:
        first += REF_OFFSET
    n = count if count is not None else 1
    if op in _ALL_T:
        return [first] * max(n, 1)
    dtypes: list[int | None] = [first] + [None] * max(n - 1, 0)
    if op in _SECOND_OUTPUT and len(dtypes) > 1:
        dtypes[1] = _attr_type(node, _SECOND_OUTPUT[op])
    return dtypes


def _first_dtype(node: Any) -> int | None:
    op = node.op
    if op in _RESOURCE_OPS:
        return protos.dtype_numbers()["DT_RESOURCE"]
    if op in _BOOL_OPS:
        return protos.dtype_numbers()["DT_BOOL"]
    if op in _STRING_OPS:
        return protos.dtype_numbers()["DT_STRING"]
    if op in _FIXED:
        return protos.dtype_numbers()[_FIXED[op]]
    if op in _ATTR_OUTPUT:
        return _attr_type(node, _ATTR_OUTPUT[op])
    for attr in ("dtype", "T", "out_type"):
        found = _attr_type(node, attr)
        if found is not None:
            return found
    return None


def output_shape(node: Any, index: int) -> Any:
    """The output's TensorShapeProto; unknown rank when the node does not say."""
    shape = protos.message_class("tensorflow/core/framework/tensor_shape.proto", "tensorflow.TensorShapeProto")()
    if "_output_shapes" in node.attr and index < len(node.attr["_output_shapes"].list.shape):
        shape.CopyFrom(node.attr["_output_shapes"].list.shape[index])
    elif index == 0 and node.op in ("Placeholder", "PlaceholderWithDefault") and "shape" in node.attr:
        shape.CopyFrom(node.attr["shape"].shape)
    elif index == 0 and node.op == "Const" and "value" in node.attr:
        shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
    else:
        shape.unknown_rank = True
    return shape


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
    stack = [split_tensor_name(name)[0] for name in outputs if name]
    seen: set[str] = set()
    found: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name in fed_nodes:
            continue
        seen.add(name)
        node = index.nodes.get(name)
        if node is None:
            continue
        if node.op == "Placeholder":
            found.add(name)
            continue
        stack.extend(text.lstrip("^").split(":")[0] for text in node.input)
    return sorted(found)
