"""A GraphDef parsed with only what a walk over it needs: each node's name, op and inputs.

Parsing a 200 MB graph of a million small nodes into `tensorflow.GraphDef`
builds every attribute, tensor and shape message of every node, about 1 GB
of them, while `scan` looks at the attributes of a few nodes only (risky
ops, calls, unknown op types). A `LeanGraph`, built here at run time
against our proto pool, declares `GraphDef.node` as a `LeanNode` {name = 1,
op = 2, input = 3} and `GraphDef.library` as the real
`tensorflow.FunctionDefLibrary`; every other field (a node's device and
attr, the graph's versions) stays unparsed, kept by protobuf as unknown
bytes. Those bytes are what makes a node whole again: `full_node`
serializes a lean node (known fields, then the unknown ones verbatim) and
parses that as a `tensorflow.NodeDef`, which yields the same message as the
full parse of the original, field occurrence for field occurrence (a
repeated singular field still ends on its last value; map entries keep
their order). The string fields are declared as in NodeDef (proto3
`string`), so invalid UTF-8 in a name, op or input is refused as before.

What a lean parse does not check: the inside of the fields it keeps as
bytes. A node whose attributes are damaged parses here, and fails (a
DecodeError) only when `full_node` makes it whole.
"""

from __future__ import annotations

import threading
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
_LOCK = threading.Lock()


def _descriptor() -> descriptor_pb2.FileDescriptorProto:
    """`LeanNode` {string name = 1; string op = 2; repeated string input = 3} and `LeanGraph`."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package="smsurgery.lean", syntax="proto3", dependency=[_FUNCTION_PROTO]
    )
    node = fdp.message_type.add(name="LeanNode")
    node.field.add(name="name", number=1, type=_STRING, label=_OPTIONAL)
    node.field.add(name="op", number=2, type=_STRING, label=_OPTIONAL)
    node.field.add(name="input", number=3, type=_STRING, label=_REPEATED)
    graph = fdp.message_type.add(name="LeanGraph")
    graph.field.add(name="node", number=1, type=_MESSAGE, label=_REPEATED, type_name=".smsurgery.lean.LeanNode")
    graph.field.add(
        name="library", number=2, type=_MESSAGE, label=_OPTIONAL, type_name=".tensorflow.FunctionDefLibrary"
    )
    return fdp


@cache
def lean_graph_class() -> type[Any]:
    """The `LeanGraph` message class, added to our pool once (it refers to FunctionDefLibrary there)."""
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
def _node_def_class() -> type[Any]:
    return protos.message_class("tensorflow/core/framework/node_def.proto", "tensorflow.NodeDef")


@cache
def _lean_node_class() -> type[Any]:
    return message_factory.GetMessageClass(lean_graph_class().DESCRIPTOR.fields_by_name["node"].message_type)


def is_lean(node: Any) -> bool:
    return type(node) is _lean_node_class()


def full_node(node: Any) -> Any:
    """The `tensorflow.NodeDef` a lean node was parsed from (a NodeDef is returned as it is).

    Raises protobuf's DecodeError when the node's attributes are damaged.
    """
    if not is_lean(node):
        return node
    return _node_def_class().FromString(node.SerializeToString())


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
