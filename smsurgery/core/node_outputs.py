"""What a node's outputs are, read from its own attributes: how many, their dtypes and shapes.

Without the TensorFlow runtime there is no op registry, so the dtype is read
from the producing node's attributes (`Tout`, `dtype`, `T`, ...), best
effort; `None` means "not knowable here", and callers refuse rather than
guess. Shapes come from `_output_shapes` (written by every exporter we know)
or the node's own `shape`/`value`. The same rules hold for nodes of the main
graph and of FunctionDefs (their NodeDefs carry the same attributes).
"""

from __future__ import annotations

from typing import Any

from smsurgery.core import protos

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
    if op in ("IdentityN", "While", "StatelessWhile", "_While") and "T" in node.attr:
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


def base_dtype(number: int) -> int:
    return number - REF_OFFSET if number > REF_OFFSET else number
