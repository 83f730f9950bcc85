"""Change an input's declared and actual shape (batch 1 -> dynamic) in the protos.

Serving batches requests along dimension 0; a graph exported with batch 1
refuses any other. The shape lives in several places, all changed together:
- TF1: the Placeholder's `shape` attr and `_output_shapes`, and the
  `tensor_shape` of every `signature_def` entry naming that tensor;
- TF2 also: the `_output_shapes` arg attr of the signature wrapper function
  and of every function it passes the argument to (through call ops), the
  TensorSpec of each such concrete function's `canonicalized_input_signature`
  (what `tf.saved_model.load` checks a call against), and the
  `function_spec.input_signature` of the tf.function that owns it.
When dimension 0 changes, outputs whose declared dimension 0 was the old
batch follow (signature_def, the call node's `_output_shapes`, the
concrete function's `output_signature`). A Reshape to a constant that fixes
the batch downstream is refused with its name: the graph itself would
still only run the old batch. Pure proto edits; TensorFlow is not imported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any

from smsurgery.core.errors import InvalidEdit, SignatureNotFound, UnsupportedModel, listing
from smsurgery.core.graphmodel import node_of
from smsurgery.edits import objectgraph
from smsurgery.edits.changes import Change, EditReport
from smsurgery.edits.signatures import user_keys

PLACEHOLDERS = ("Placeholder", "PlaceholderWithDefault")


def parse_dims(text: str) -> tuple[int, ...]:
    """`-1,224,224,3` (or `?`/`None` for unknown) -> (-1, 224, 224, 3)."""
    dims = []
    for part in text.split(","):
        word = part.strip()
        if word in ("?", "None", "none", "-1"):
            dims.append(-1)
        elif word.isdigit():
            dims.append(int(word))
        else:
            raise InvalidEdit(f"dimension {word!r} of {text!r} is not a size or -1", hint="e.g. -1,224,224,3")
    return tuple(dims)


def _set_shape(shape: Any, dims: Sequence[int]) -> None:
    shape.Clear()
    for size in dims:
        shape.dim.add().size = size


def _dims(shape: Any) -> tuple[int, ...] | None:
    return None if shape.unknown_rank else tuple(d.size for d in shape.dim)


def _downstream(nodes: Sequence[Any], start: str) -> Iterator[Any]:
    """Nodes reached from `start` (a node or function-argument name) through data inputs."""
    consumers: dict[str, list[Any]] = {}
    for node in nodes:
        for reference in node.input:
            if not reference.startswith("^"):
                consumers.setdefault(node_of(reference), []).append(node)
    seen, todo = {start}, [start]
    while todo:
        for node in consumers.get(todo.pop(), []):
            if node.name not in seen:
                seen.add(node.name)
                todo.append(node.name)
                yield node


def _const_ints(node: Any) -> list[int] | None:
    tensor = node.attr["value"].tensor
    if tensor.int_val or tensor.int64_val:
        return list(tensor.int_val) or list(tensor.int64_val)
    content = tensor.tensor_content
    if content and len(content) % 4 == 0:
        code = "q" if tensor.dtype == 9 and len(content) % 8 == 0 else "i"  # DT_INT64 = 9
        return list(struct.unpack(f"<{len(content) // struct.calcsize(code)}{code}", content))
    return None


def _fixed_batch(nodes: Sequence[Any], start: str, old_batch: int) -> str | None:
    """Where a Reshape to a constant fixes dimension 0 downstream of `start`, in words."""
    by_name = {node.name: node for node in nodes}
    for node in _downstream(nodes, start):
        if node.op != "Reshape" or len(node.input) < 2:
            continue
        const = by_name.get(node_of(node.input[1]))
        values = _const_ints(const) if const is not None and const.op == "Const" else None
        if values and values[0] == old_batch:
            return f"Reshape '{node.name}' reshapes to the constant {values} ('{const.name}')"
    return None


def _placeholder(meta: Any, tensor: str) -> Any:
    name = node_of(tensor)
    node = next((n for n in meta.graph_def.node if n.name == name), None)
    if node is None or node.op not in PLACEHOLDERS:
        found = node.op if node is not None else "nothing"
        raise UnsupportedModel(f"input tensor {tensor} is {found}, not a Placeholder: its shape cannot be set")
    return node


def _set_node_shape(node: Any, dims: Sequence[int]) -> None:
    if "shape" in node.attr:
        _set_shape(node.attr["shape"].shape, dims)
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        _set_shape(node.attr["_output_shapes"].list.shape[0], dims)


def _flat_specs(value: Any) -> list[Any]:
    """TensorSpecs of a StructuredValue in nest order (dict keys sorted), as functions take them."""
    kind = value.WhichOneof("kind")
    if kind == "tensor_spec_value":
        return [value.tensor_spec_value]
    if kind in ("tuple_value", "list_value"):
        return [spec for item in getattr(value, kind).values for spec in _flat_specs(item)]
    if kind == "dict_value":
        fields = value.dict_value.fields
        return [spec for key in sorted(fields) for spec in _flat_specs(fields[key])]
    return []


def _functions_fed(meta: Any, function_name: str, position: int) -> Iterator[tuple[Any, int]]:
    """(FunctionDef, argument index) of `function_name` and of every function its argument flows into."""
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    todo, seen = [(function_name, position)], set()
    while todo:
        name, index = todo.pop()
        function = library.get(name)
        if function is None or (name, index) in seen or index >= len(function.signature.input_arg):
            continue
        seen.add((name, index))
        yield function, index
        arg = function.signature.input_arg[index].name
        for node in function.node_def:
            callee = node.attr["f"].func.name if "f" in node.attr else ""
            for slot, reference in enumerate(node.input):
                if callee and node_of(reference) == arg:
                    todo.append((callee, slot))


def _set_function_arg(meta: Any, function: Any, index: int, dims: Sequence[int]) -> None:
    attrs = function.arg_attr[index].attr
    if "_output_shapes" in attrs and attrs["_output_shapes"].list.shape:
        _set_shape(attrs["_output_shapes"].list.shape[0], dims)
    name = function.signature.name
    concrete = meta.object_graph_def.concrete_functions.get(name)
    if concrete is not None:
        specs = _flat_specs(concrete.canonicalized_input_signature)
        if index < len(specs):
            _set_shape(specs[index].shape, dims)
    for node in meta.object_graph_def.nodes:
        if node.WhichOneof("kind") == "function" and name in node.function.concrete_functions:
            specs = _flat_specs(node.function.function_spec.input_signature)
            if index < len(specs):
                _set_shape(specs[index].shape, dims)


def _follow_outputs(meta: Any, key: str, old_batch: int, new_batch: int) -> list[str]:
    """Outputs of `key` declared with dimension 0 == old batch get the new one; their aliases."""
    signature, changed = meta.signature_def[key], []
    for alias in sorted(signature.outputs):
        shape = signature.outputs[alias].tensor_shape
        if not shape.unknown_rank and shape.dim and shape.dim[0].size == old_batch:
            shape.dim[0].size = new_batch
            changed.append(alias)
    if changed and objectgraph.has_object_graph(meta) and key in objectgraph.signature_children(meta):
        function = objectgraph.signature_function(meta, key)
        for alias in changed:
            if alias in function.outputs:
                spec = function.outputs[alias].tensor_spec_value
                if spec.shape.dim and spec.shape.dim[0].size == old_batch:
                    spec.shape.dim[0].size = new_batch
        for call in function.calls:
            for shape in call.attr["_output_shapes"].list.shape:
                if shape.dim and shape.dim[0].size == old_batch:
                    shape.dim[0].size = new_batch
    return changed


def _refuse_fixed(meta: Any, info: Any, key: str, alias: str, old_batch: int) -> None:
    where = _fixed_batch(list(meta.graph_def.node), node_of(info.name), old_batch)
    if objectgraph.has_object_graph(meta) and where is None and key in objectgraph.signature_children(meta):
        function = objectgraph.signature_function(meta, key)
        position = sorted(function.kwargs).index(alias) if alias in function.kwargs else None
        for fdef, index in _functions_fed(meta, function.name, position) if position is not None else []:
            where = where or _fixed_batch(list(fdef.node_def), fdef.signature.input_arg[index].name, old_batch)
    if where:
        raise InvalidEdit(
            f"dimension 0 of '{alias}' is fixed elsewhere in the graph: {where}",
            hint="the graph would still only run batch size " + str(old_batch),
        )


def set_input_shape(meta: Any, key: str, alias: str, dims: Sequence[int]) -> EditReport:
    """Declare input `alias` of signature `key` with shape `dims`, wherever the protos record it."""
    if key not in user_keys(meta):
        raise SignatureNotFound(f"no signature '{key}'", hint=f"it has: {listing(user_keys(meta))}")
    signature = meta.signature_def[key]
    if alias not in signature.inputs:
        raise InvalidEdit(
            f"signature '{key}' has no input '{alias}'", hint=f"inputs: {listing(sorted(signature.inputs))}"
        )
    info = signature.inputs[alias]
    if not info.name:
        raise UnsupportedModel(f"input '{alias}' of '{key}' is a composite tensor; its shape cannot be set")
    old = _dims(info.tensor_shape)
    if old is not None and len(old) != len(dims):
        raise InvalidEdit(f"input '{alias}' has rank {len(old)} {list(old)}; {list(dims)} has rank {len(dims)}")
    if old == tuple(dims):
        raise InvalidEdit(f"input '{alias}' of '{key}' already has shape {list(dims)}")
    batch_changes = old is not None and bool(dims) and old[0] != dims[0]
    if batch_changes and old[0] > 0:
        _refuse_fixed(meta, info, key, alias, old[0])
    _set_node_shape(_placeholder(meta, info.name), dims)
    followed: list[str] = []
    for other_key, other in meta.signature_def.items():
        for other_alias, other_info in other.inputs.items():
            if other_info.name == info.name:
                _set_shape(other_info.tensor_shape, dims)
                if objectgraph.has_object_graph(meta) and other_key in objectgraph.signature_children(meta):
                    function = objectgraph.signature_function(meta, other_key)
                    position = sorted(function.kwargs).index(other_alias)
                    for fdef, index in _functions_fed(meta, function.name, position):
                        _set_function_arg(meta, fdef, index, dims)
                if batch_changes and old is not None:
                    followed += [f"{other_key}/{a}" for a in _follow_outputs(meta, other_key, old[0], dims[0])]
    detail = f"input '{alias}' of '{key}': shape {list(old) if old is not None else '(unknown rank)'} -> {list(dims)}"
    if followed:
        detail += f"; outputs following dimension 0: {', '.join(followed)}"
    old_text = ",".join(map(str, old)) if old is not None else None
    new_text = ",".join(map(str, dims))
    return EditReport([Change("set_shape", key, alias=alias, side="inputs", old=old_text, new=new_text, detail=detail)])
