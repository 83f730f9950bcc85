"""Put a subgraph in front of an input: re-create what depends on it, fed by new tensors.

The obvious way, `import_graph_def(graph_def, input_map={"image:0": new})`
of the whole graph, rewires *every* user of the old input: the signature
that should keep taking floats, other signatures sharing the placeholder,
and (on TF2 exports) the original call node. So we copy only the *cone*: the
ops that lie both downstream of the replaced tensor and upstream of the
wanted outputs. The copy is imported under a fresh name scope with an
`input_map` that feeds it the new tensor and binds every other input
(variables, constants, the signature's other placeholders) to the existing
tensors, which are shared, not copied. On a TF2 or Keras export the cone is
the signature's `StatefulPartitionedCall` node: the copy is a second call of
the same function, fed by the new subgraph.

Details the copy must get right: control inputs from outside the cone are
re-attached after import (the importer only remaps data inputs by tensor);
colocation hints pointing outside the cone are dropped (the importer would
prefix them with the new scope and point them at nothing); TF1 while-loop
frame names are prefixed so the copy's loop is a distinct frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smsurgery.core.errors import DtypeMismatch, TensorNotFound
from smsurgery.core.graphmodel import MAIN, GraphModel, node_of, parse_input
from smsurgery.graph.session import import_tf


def _tensor_name(reference: str) -> str:
    """`a` -> `a:0`; `a:1` stays."""
    return reference if ":" in reference else f"{reference}:0"


@dataclass(frozen=True)
class Rewired:
    """What `put_in_front` made: the outputs to use instead of `fetches`, and the copied ops."""

    outputs: dict[str, Any]  # fetch tensor name -> tensor computed from the new inputs
    scope: str
    copied: list[str] = field(default_factory=list)  # op names in the source graph that were copied


def cone(graph_def: Any, replaced: Sequence[str], fetches: Sequence[str]) -> set[str]:
    """Op names downstream of the `replaced` tensors and upstream of the `fetches` tensors."""
    model = GraphModel.of_graph(graph_def, lenient=True)
    replaced_ops = {node_of(t) for t in replaced}
    readers = set()
    for tensor in replaced:
        read = parse_input(tensor, in_function=False, lenient=True)
        readers.update(model.tensor_consumers(MAIN, read.node, read.index))
    down = model.downstream(MAIN, readers - replaced_ops, stop=replaced_ops) - replaced_ops
    up = model.upstream(MAIN, (node_of(f) for f in fetches))
    return down & up


def _copy_node(node: Any, members: set[str], replaced: Mapping[str, Any], graph: Any, scope: str, into: Any) -> tuple:
    """Append a copy of `node` to `into`; return (input_map entries, external control inputs)."""
    copy = into.node.add()
    copy.CopyFrom(node)
    del copy.input[:]
    input_map: dict[str, Any] = {}
    control: list[str] = []
    for reference in node.input:
        source = node_of(reference)
        if reference.startswith("^"):
            if source in members:
                copy.input.append(reference)
            else:
                control.append(source)
            continue
        copy.input.append(reference)
        name = _tensor_name(reference)
        if name in replaced:
            input_map[name] = replaced[name]
        elif source not in members:
            input_map[name] = graph.get_tensor_by_name(name)
    if "_class" in copy.attr:
        kept = [v for v in copy.attr["_class"].list.s if v.decode().removeprefix("loc:@") in members]
        del copy.attr["_class"].list.s[:]
        copy.attr["_class"].list.s.extend(kept)
        if not kept:
            del copy.attr["_class"]
    if "frame_name" in copy.attr:
        copy.attr["frame_name"].s = f"{scope}/".encode() + copy.attr["frame_name"].s
    return input_map, control


def put_in_front(graph: Any, replaced: Mapping[str, Any], fetches: Sequence[str], *, scope: str) -> Rewired:
    """Re-create the part of `graph` between `replaced` and `fetches`, fed by new tensors.

    `replaced`: tensor name in `graph` -> the tensor to use instead (same
    dtype; a compatible shape). `fetches`: tensor names wanted, e.g. a
    signature's outputs. Returns, for each fetch, the tensor of the copy, or
    the original tensor when the fetch does not depend on a replaced tensor.
    The original ops are left as they were, so everything else keeps working.
    """
    tf = import_tf()
    for name, new in replaced.items():
        old = _lookup(graph, name)
        if old.dtype.base_dtype != new.dtype.base_dtype:
            raise DtypeMismatch(f"cannot feed {new.dtype.name} into {name}, which is {old.dtype.name}")
    for name in fetches:
        _lookup(graph, name)
    graph_def = graph.as_graph_def()
    members = cone(graph_def, list(replaced), fetches)
    part = tf.compat.v1.GraphDef()
    part.versions.CopyFrom(graph_def.versions)
    input_map: dict[str, Any] = {}
    control: dict[str, list[str]] = {}
    for node in graph_def.node:  # graph order is a valid import order
        if node.name in members:
            mapped, external = _copy_node(node, members, replaced, graph, scope, part)
            input_map.update(mapped)
            if external:
                control[node.name] = external
    with graph.as_default():
        unique = graph.unique_name(scope, mark_as_used=False)
        wanted = [f for f in fetches if node_of(f) in members]
        returned = tf.graph_util.import_graph_def(part, input_map=input_map, return_elements=wanted, name=unique)
        for name, sources in control.items():
            op = graph.get_operation_by_name(f"{unique}/{name}")
            op._add_control_inputs([graph.get_operation_by_name(s) for s in sources])
    by_name = dict(zip(wanted, returned, strict=True))
    outputs = {f: _output(graph, f, by_name, replaced) for f in fetches}
    return Rewired(outputs=outputs, scope=unique, copied=sorted(members))


def _output(graph: Any, fetch: str, copied: Mapping[str, Any], replaced: Mapping[str, Any]) -> Any:
    """The copy of `fetch`; the new tensor if `fetch` is itself replaced; else `fetch` unchanged."""
    if fetch in copied:
        return copied[fetch]
    if _tensor_name(fetch) in replaced:
        return replaced[_tensor_name(fetch)]
    return graph.get_tensor_by_name(_tensor_name(fetch))


def _lookup(graph: Any, name: str) -> Any:
    try:
        return graph.get_tensor_by_name(_tensor_name(name))
    except (KeyError, ValueError) as error:
        raise TensorNotFound(f"no tensor '{name}' in the graph") from error


def front_signature(
    graph: Any,
    signature_def: Any,
    *,
    replaced: Mapping[str, Any],
    new_inputs: Mapping[str, Any],
    scope: str,
) -> tuple[Any, Rewired]:
    """A new `SignatureDef`: `signature_def` with inputs `replaced` (alias -> tensor) fed by new ops.

    `new_inputs` (alias -> placeholder) become the signature's new inputs in
    place of the replaced aliases; every other input keeps its alias and
    tensor; outputs keep their aliases and point at the rewired copy.
    """
    tf = import_tf()
    utils = tf.compat.v1.saved_model.utils
    by_tensor = {signature_def.inputs[alias].name: tensor for alias, tensor in replaced.items()}
    fetches = [signature_def.outputs[alias].name for alias in sorted(signature_def.outputs)]
    rewired = put_in_front(graph, by_tensor, fetches, scope=scope)
    new = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(method_name=signature_def.method_name)
    for alias, info in signature_def.inputs.items():
        if alias not in replaced:
            new.inputs[alias].CopyFrom(info)
    for alias, tensor in new_inputs.items():
        new.inputs[alias].CopyFrom(utils.build_tensor_info(tensor))
    for alias in sorted(signature_def.outputs):
        info = utils.build_tensor_info(rewired.outputs[signature_def.outputs[alias].name])
        info.tensor_shape.CopyFrom(signature_def.outputs[alias].tensor_shape)  # keep what clients were promised
        new.outputs[alias].CopyFrom(info)
    return new, rewired
