"""Thread a tensor that lives inside a function out to a signature, as a new result of every function on the way.

In a TF2 export a signature's outputs are results of a call node in the main
graph, which calls the *signature wrapper*, which calls the traced function
(`__call__`, a `tf.function`), and so on down to the node that computes the
tensor. To expose that tensor, each function on the call path gets one more
result (`signature.output_arg` and `ret`), each call node on the path one
more `Tout` entry (and `_output_shapes`), and the main-graph call node one
more output that `signature_def` names. For `tf.saved_model.load` the
wrapper's concrete function gets the new key in its `output_signature`, and
the wrapper's results are put back in sorted-key order (see `objectgraph`).

Nothing shared is changed: every function below the wrapper is cloned
before it is changed (Keras' `serve` and `serving_default` call the same
`__call__`, which is also the module's `serve` attribute), and the wrapper
and its call node are cloned when another signature uses them. So the
other signatures and attributes compute exactly what they did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InternalError, UnsupportedModel
from smsurgery.core.graphmodel import CALL_OPS, MAIN, GraphModel, TensorRef, parse_input
from smsurgery.core.node_outputs import base_dtype
from smsurgery.core.tensor_index import TensorEntry
from smsurgery.edits import objectgraph

# Dtypes a Serving response cannot carry (TensorProto of a handle or variant is not a value).
UNSERVABLE = {"DT_RESOURCE", "DT_VARIANT"}


@dataclass
class Threaded:
    """Where a threaded tensor came out: the main-graph call node and its output index."""

    call: str
    index: int
    dtype: int
    shape: Any  # TensorShapeProto


@dataclass
class Wrapper:
    """The signature's wrapper function and the one main-graph call node that the signature reads."""

    name: str
    call: Any  # NodeDef in the main graph
    function: objectgraph.SignatureFunction | None  # None without an object graph
    origin: str  # the wrapper's name before a private clone (what user addresses name)


def check_servable(entry: TensorEntry) -> int:
    """The entry's dtype, refused when unknown, a handle or a loop/branch value."""
    if not entry.fetchable:
        raise UnsupportedModel(
            f"'{entry.address}' lives in a {entry.context}: it has a value only inside that body, one per "
            "iteration or branch, not outside it",
            hint="expose the loop's or branch's result instead (the While/If node in the function that runs it)",
        )
    if entry.dtype is None:
        raise UnsupportedModel(
            f"cannot tell the dtype of '{entry.address}' (op {entry.op}) from the protos",
            hint="choose the Identity that reads it, or another tensor whose op declares its dtype",
        )
    name = protos.dtype_name(base_dtype(entry.dtype))
    if name in UNSERVABLE:
        raise UnsupportedModel(f"'{entry.address}' is a {name}, which TensorFlow Serving cannot return")
    return base_dtype(entry.dtype)


def private_wrapper(meta: Any, key: str) -> Wrapper:
    """The signature's wrapper and call node, cloned first if anything else uses them."""
    signature = meta.signature_def[key]
    if objectgraph.has_object_graph(meta):
        origin = objectgraph.signature_function(meta, key).name
        function = objectgraph.private_signature_function(meta, key)
        call = _signature_call(signature, function.calls)
        return Wrapper(function.name, call, function, origin)
    call = _signature_call(signature, [n for n in meta.graph_def.node if n.op in CALL_OPS])
    origin = call.attr["f"].func.name
    if _wrapper_shared(meta, key, call):
        call = _clone_wrapper(meta, key, call)
    return Wrapper(call.attr["f"].func.name, call, None, origin)


def _signature_call(signature: Any, calls: list[Any]) -> Any:
    used = {parse_input(n, in_function=False).node for n in objectgraph.signature_tensor_names(signature) if n}
    for call in calls:
        if call.name in used:
            return call
    raise UnsupportedModel(
        "the signature's outputs are not results of a function call in the main graph",
        hint="name a tensor of the main graph (smsurgery tensors lists them)",
    )


def _wrapper_shared(meta: Any, key: str, call: Any) -> bool:
    name = call.attr["f"].func.name
    model = GraphModel(meta)
    if len(model.callers(name)) > 1:
        return True
    return any(
        other != key
        and call.name in {parse_input(n, in_function=False).node for n in objectgraph.signature_tensor_names(signature)}
        for other, signature in meta.signature_def.items()
    )


def _clone_wrapper(meta: Any, key: str, call: Any) -> Any:
    """No object graph: a copy of the wrapper and of its call node for this signature alone."""
    library = meta.graph_def.library
    old = call.attr["f"].func.name
    new = _free_function_name(meta, old)
    fdef = library.function.add()
    fdef.CopyFrom(objectgraph.function_def(meta, old))
    fdef.signature.name = new
    names = {n.name for n in meta.graph_def.node}
    copy = meta.graph_def.node.add()
    copy.CopyFrom(call)
    copy.name = _free_name(names, call.name)
    copy.attr["f"].func.name = new
    objectgraph.rewrite_signature_tensors(
        meta.signature_def[key], lambda node, index: (copy.name if node == call.name else node, index)
    )
    return copy


def thread_out(meta: Any, wrapper: Wrapper, entry: TensorEntry, label: str) -> Threaded:
    """Make `entry` a new last result of the wrapper's call node; returns where it comes out."""
    dtype = check_servable(entry)
    model = GraphModel(meta)
    path = _path_to_copy(model, wrapper, entry.ref.scope)
    if path is None:
        raise UnsupportedModel(
            f"'{entry.address}' is not computed by plain calls from the signature's function {wrapper.name}",
            hint="choose a tensor of a function this signature calls (smsurgery tensors -s KEY lists them)",
        )
    shape = model.shape(entry.ref)
    functions = _clone_path(meta, model, wrapper.name, [c.node for c in path])
    local = entry.ref.local_name
    for depth in range(len(functions) - 1, -1, -1):
        fdef = objectgraph.function_def(meta, functions[depth])
        _add_result(fdef, local, dtype, label)
        if depth == 0:
            break
        caller = objectgraph.function_def(meta, functions[depth - 1])
        node = next(n for n in caller.node_def if n.name == path[depth - 1].node)
        local = f"{node.name}:output:{_append_output(node, dtype, shape)}"
    index = _append_output(wrapper.call, dtype, shape)
    return Threaded(wrapper.call.name, index, dtype, shape)


def root_name(function: str) -> str:
    """`F_smsurgery2` (a clone we made) -> `F`: user addresses name the function they saw in `tensors`."""
    return re.sub(r"(_smsurgery\d+)+$", "", function)


def _path_to_copy(model: GraphModel, wrapper: Wrapper, target: str) -> list[Any] | None:
    """Plain calls from the wrapper down to `target` or to our private copy of it."""
    if root_name(target) in (root_name(wrapper.name), root_name(wrapper.origin)):
        return []
    parents: dict[str, Any] = {}
    queue, seen = [wrapper.name], {wrapper.name}
    while queue:
        current = queue.pop(0)
        for call in model.callees(current):
            if call.kind != "call" or call.function in seen:
                continue
            parents[call.function] = call
            if root_name(call.function) == root_name(target):
                path = [call]
                while path[0].scope != wrapper.name:
                    path.insert(0, parents[path[0].scope])
                return path
            seen.add(call.function)
            queue.append(call.function)
    return None


def _clone_path(meta: Any, model: GraphModel, wrapper: str, call_nodes: list[str]) -> list[str]:
    """Functions on the path, wrapper first; each cloned if anything else could see it change.

    A function with one caller that the object graph does not list (our
    own earlier copy, say) is changed in place; below a cloned function
    everything is cloned, since the original still calls the originals.
    """
    names, cloning = [wrapper], False
    for node_name in call_nodes:
        caller = objectgraph.function_def(meta, names[-1])
        node = next(n for n in caller.node_def if n.name == node_name)
        callee = node.attr["f"].func.name
        concrete = meta.object_graph_def.concrete_functions
        cloning = cloning or len(model.callers(callee)) > 1 or callee in concrete
        if cloning:
            clone = meta.graph_def.library.function.add()
            clone.CopyFrom(objectgraph.function_def(meta, callee))
            clone.signature.name = _free_function_name(meta, callee)
            node.attr["f"].func.name = clone.signature.name
            callee = clone.signature.name
        names.append(callee)
    return names


def _add_result(fdef: Any, local: str, dtype: int, label: str) -> str:
    taken = {a.name for a in fdef.signature.input_arg} | {a.name for a in fdef.signature.output_arg}
    base = "smsurgery_" + (re.sub(r"[^a-z0-9_]", "_", label.lower()) or "out")
    name = base if base not in taken else _free_name(taken, base)
    arg = fdef.signature.output_arg.add()
    arg.name, arg.type = name, dtype
    fdef.ret[name] = local
    return name


def _append_output(node: Any, dtype: int, shape: Any) -> int:
    if "Tout" not in node.attr:
        raise InternalError(f"call node {node.name} has no Tout")
    node.attr["Tout"].list.type.append(dtype)
    if "_output_shapes" in node.attr:
        node.attr["_output_shapes"].list.shape.add().CopyFrom(shape)
    return len(node.attr["Tout"].list.type) - 1


def _free_function_name(meta: Any, base: str) -> str:
    root = root_name(base)
    return _free_name({f.signature.name for f in meta.graph_def.library.function}, root, separator="_smsurgery")


def _free_name(taken: set[str], base: str, separator: str = "_") -> str:
    for number in range(1, 100_000):
        candidate = f"{base}{separator}{number}"
        if candidate not in taken:
            return candidate
    raise InternalError(f"no free name for {base}")


def output_spec(alias: str, dtype: int, shape: Any) -> Any:
    """A `tensor_spec_value` StructuredValue, as `output_signature` holds for each key."""
    value = protos.message_class("tensorflow/core/protobuf/struct.proto", "tensorflow.StructuredValue")()
    value.tensor_spec_value.name = alias
    value.tensor_spec_value.dtype = dtype
    value.tensor_spec_value.shape.CopyFrom(shape)
    return value


def is_main(entry: TensorEntry) -> bool:
    return entry.ref.scope == MAIN


@dataclass(frozen=True)
class Trace:
    """Where a signature output really comes from: the calls below the wrapper and the node at the end."""

    wrapper: str
    calls: tuple[str, ...]  # call node names, wrapper's first
    function: str
    node: str
    flat_index: int

    @property
    def inlined_name(self) -> str:
        """The node's name once TensorFlow inlines the calls (`call/call/node`), as Grappler names it."""
        return "/".join([*self.calls, self.node]) + f":{self.flat_index}"


def trace_output(meta: Any, key: str, alias: str) -> Trace | None:
    """Follow output `alias` of `key` from the main-graph call node down the rets to a computing node.

    None when the output is not a function's result or ends at a function
    argument (nothing inside to compare with).
    """
    model = GraphModel(meta)
    item = parse_input(meta.signature_def[key].outputs[alias].name, in_function=False)
    node = model.main.nodes.get(item.node)
    if node is None or node.op not in CALL_OPS:
        return None
    wrapper = function = node.attr["f"].func.name
    index, calls = item.index, []
    while True:
        fdef = model.function_defs[function]
        ret = parse_input(fdef.ret[fdef.signature.output_arg[index].name], in_function=True)
        inner = model.scope(function).nodes.get(ret.node)
        if inner is None:
            return None
        if inner.op not in CALL_OPS:
            ref = TensorRef(function, ret.node, ret.index, ret.arg)
            return Trace(wrapper, tuple(calls), function, ret.node, model.flat_index(ref))
        calls.append(ret.node)
        function, index = inner.attr["f"].func.name, ret.index
