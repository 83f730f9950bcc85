"""A GraphDef parsed with only what a walk over it needs: each node's name, op and inputs.

Parsing a 200 MB graph of a million small nodes into `tensorflow.GraphDef`
builds every attribute, tensor and shape message of every node, about 1 GB
of them, while `scan` looks at the attributes of a few nodes only (risky
ops, calls, unknown op types). A `LeanGraph`, built here at run time
against our proto pool, declares `GraphDef.node` (and a function's
`node_def`) as a `LeanNode` {name = 1, op = 2, input = 3}, and the library
as `LeanLibrary` {function = 1, gradient = 2} of `LeanFunction`
{signature = 1, node_def = 3, attr = 5}, with TensorFlow's own OpDef,
AttrValue and GradientDef. Every other field (a node's device and attr, a
function's ret and arg_attr maps, the graph's versions) stays unparsed,
kept by protobuf as unknown bytes. Those bytes are what makes a node whole
again: `full_node` serializes a lean node (known fields, then the unknown
ones verbatim) and parses that as a `tensorflow.NodeDef`, which yields the
same message as the full parse of the original, field occurrence for field
occurrence (a repeated singular field still ends on its last value; map
entries keep their order); `full_function` does the same for a function.
The string fields are declared as in NodeDef (proto3 `string`), so invalid
UTF-8 in a name, op or input is refused as before.

What a lean parse does not check: the inside of the fields it keeps as
bytes. A node whose attributes are damaged parses here, and fails (a
DecodeError) only when `full_node` makes it whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, message_factory

from smsurgery.core import protos
from smsurgery.core.skim import Skim, graph_def_bytes

_FILE = "smsurgery/lean_graph.proto"
_FUNCTION_PROTO = "tensorflow/core/framework/function.proto"
_FIELD = descriptor_pb2.FieldDescriptorProto
_STRING, _MESSAGE = _FIELD.TYPE_STRING, _FIELD.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _FIELD.LABEL_OPTIONAL, _FIELD.LABEL_REPEATED
_DEPENDENCIES = [
    _FUNCTION_PROTO,
    "tensorflow/core/framework/attr_value.proto",
    "tensorflow/core/framework/op_def.proto",
]
_LEAN = ".smsurgery.lean"
_LOCK = threading.Lock()


def _descriptor() -> descriptor_pb2.FileDescriptorProto:
    """`LeanNode`, `LeanFunction`, `LeanLibrary`, `LeanGraph`: the field numbers of NodeDef, FunctionDef, ..."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package="smsurgery.lean", syntax="proto3", dependency=_DEPENDENCIES
    )
    node = fdp.message_type.add(name="LeanNode")
    node.field.add(name="name", number=1, type=_STRING, label=_OPTIONAL)
    node.field.add(name="op", number=2, type=_STRING, label=_OPTIONAL)
    node.field.add(name="input", number=3, type=_STRING, label=_REPEATED)
    function = fdp.message_type.add(name="LeanFunction")  # FunctionDef without ret, control_ret, arg_attr
    function.field.add(name="signature", number=1, type=_MESSAGE, label=_OPTIONAL, type_name=".tensorflow.OpDef")
    function.field.add(name="node_def", number=3, type=_MESSAGE, label=_REPEATED, type_name=f"{_LEAN}.LeanNode")
    entry = function.nested_type.add(name="AttrEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL)
    entry.field.add(name="value", number=2, type=_MESSAGE, label=_OPTIONAL, type_name=".tensorflow.AttrValue")
    function.field.add(
        name="attr", number=5, type=_MESSAGE, label=_REPEATED, type_name=f"{_LEAN}.LeanFunction.AttrEntry"
    )
    library = fdp.message_type.add(name="LeanLibrary")  # FunctionDefLibrary without registered_gradients
    library.field.add(name="function", number=1, type=_MESSAGE, label=_REPEATED, type_name=f"{_LEAN}.LeanFunction")
    library.field.add(name="gradient", number=2, type=_MESSAGE, label=_REPEATED, type_name=".tensorflow.GradientDef")
    graph = fdp.message_type.add(name="LeanGraph")
    graph.field.add(name="node", number=1, type=_MESSAGE, label=_REPEATED, type_name=f"{_LEAN}.LeanNode")
    graph.field.add(name="library", number=2, type=_MESSAGE, label=_OPTIONAL, type_name=f"{_LEAN}.LeanLibrary")
    return fdp


@cache
def lean_graph_class() -> type[Any]:
    """The `LeanGraph` message class, added to our pool once (it refers to OpDef, AttrValue, GradientDef there)."""
    protos.message_class(_FUNCTION_PROTO, "tensorflow.FunctionDefLibrary")  # its file must be in the pool first
    with _LOCK:
        pool = protos.pool()
        try:
            descriptor = pool.FindMessageTypeByName("smsurgery.lean.LeanGraph")
        except KeyError:
            pool.Add(_descriptor())
            descriptor = pool.FindMessageTypeByName("smsurgery.lean.LeanGraph")
    return message_factory.GetMessageClass(descriptor)


@cache
def node_def_class() -> type[Any]:
    return protos.message_class("tensorflow/core/framework/node_def.proto", "tensorflow.NodeDef")


@cache
def lean_node_class() -> type[Any]:
    return message_factory.GetMessageClass(lean_graph_class().DESCRIPTOR.fields_by_name["node"].message_type)


@cache
def lean_library_class() -> type[Any]:
    return message_factory.GetMessageClass(lean_graph_class().DESCRIPTOR.fields_by_name["library"].message_type)


@dataclass
class SpannedNode:
    """A node left in the file (core/lean_spans.py): its name, op and inputs, and where its NodeDef lies."""

    lean: Any  # a LeanNode of the node's name, op and input fields
    data: Any  # the file's mapping
    start: int
    end: int

    @property
    def name(self) -> str:
        return str(self.lean.name)

    @property
    def op(self) -> str:
        return str(self.lean.op)

    @property
    def input(self) -> Any:
        return self.lean.input

    def whole(self) -> Any:
        """The NodeDef, parsed from the mapping (DecodeError when its attributes are damaged)."""
        with memoryview(self.data) as mapped, mapped[self.start : self.end] as view:
            return node_def_class().FromString(view)


@cache
def _function_classes() -> tuple[type[Any], type[Any]]:
    """(LeanFunction, tensorflow.FunctionDef)."""
    lean = lean_graph_class().DESCRIPTOR.fields_by_name["library"].message_type.fields_by_name["function"]
    full = protos.message_class(_FUNCTION_PROTO, "tensorflow.FunctionDef")
    return message_factory.GetMessageClass(lean.message_type), full


def is_lean(node: Any) -> bool:
    return type(node) is lean_node_class() or type(node) is SpannedNode


def full_function(function: Any) -> Any:
    """The `tensorflow.FunctionDef` a lean function was parsed from (a FunctionDef is returned as it is)."""
    lean, full = _function_classes()
    return full.FromString(function.SerializeToString()) if type(function) is lean else function


def full_node(node: Any) -> Any:
    """The `tensorflow.NodeDef` a lean node was parsed from (a NodeDef is returned as it is).

    Raises protobuf's DecodeError when the node's attributes are damaged.
    """
    if type(node) is SpannedNode:
        return node.whole()
    if type(node) is not lean_node_class():
        return node
    return node_def_class().FromString(node.SerializeToString())


def lean_graph_def(skimmed: Skim, position: int) -> Any:
    """Meta graph `position`'s graph as a LeanGraph, parsed from the file's mapping without a copy.

    Raises protobuf's DecodeError (or RuntimeError/ValueError) when the graph's framing is damaged.
    """
    graph = lean_graph_class()()
    meta = skimmed.file_layout.meta_graphs[position]
    if len(meta.graph_spans) == 1:
        span = meta.graph_spans[0]
        with memoryview(skimmed.data) as whole, whole[span.body : span.end] as view:
            graph.ParseFromString(view)
    else:  # several occurrences merge, as protobuf merges them
        graph.ParseFromString(graph_def_bytes(skimmed.data, meta))
    skimmed.release()
    return graph
