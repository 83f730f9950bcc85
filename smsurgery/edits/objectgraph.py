"""TF2 object-graph surgery: keep `tf.saved_model.load`'s signatures in step with `signature_def`.

A TF2 export holds each signature twice. `signature_def` (read by the TF1
loader and TensorFlow Serving) names tensors of the main graph, usually the
outputs of a `StatefulPartitionedCall` node that calls a *signature wrapper*
function. `tf.saved_model.load` ignores `signature_def`: it takes the
children of the root's `signatures` object (a `signature_map`), each a bare
concrete function whose structured inputs (a dict in
`canonicalized_input_signature`) and outputs (a dict in `output_signature`)
are bound to the wrapper FunctionDef's flat arguments and results **in
sorted key order**.

So a rename that changes the sort order must permute the wrapper's
arguments or results, and with them the call node's inputs, `Tin`, `Tout`,
`_output_shapes` and every `call:i` consumer, or `tf.saved_model.load`
silently returns values under the wrong names. A wrapper shared by several
signatures (or a call node shared by several `signature_def` entries) is
cloned first, so editing one signature never changes another.

Everything here is a pure proto edit of one MetaGraphDef from our private
pool; nothing imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsurgery.core.errors import InternalError, UnsupportedModel
from smsurgery.core.names import node_of

SIGNATURE_MAP = "signature_map"
CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
INIT_OP_SIGNATURE = "__saved_model_init_op"
MAIN_OP_COLLECTION = "saved_model_main_op"


def has_object_graph(meta: Any) -> bool:
    return len(meta.object_graph_def.nodes) > 0


@dataclass
class SignatureFunction:
    """The TF2 side of one signature: object node, concrete function, FunctionDef, call nodes."""

    key: str
    node_id: int
    name: str  # concrete function name == FunctionDef signature name
    concrete: Any  # SavedConcreteFunction
    bare: Any  # SavedBareConcreteFunction
    function_def: Any  # FunctionDef
    calls: list[Any]  # main-graph call nodes of this FunctionDef

    @property
    def kwargs(self) -> Any:
        """The input dict (map field) of `canonicalized_input_signature`."""
        return self.concrete.canonicalized_input_signature.tuple_value.values[1].dict_value.fields

    @property
    def outputs(self) -> Any:
        return self.concrete.output_signature.dict_value.fields


def signature_map(meta: Any) -> Any | None:
    """The `signature_map` object under the root, or None."""
    nodes = meta.object_graph_def.nodes
    if not nodes:
        return None
    for child in nodes[0].children:
        node = nodes[child.node_id]
        is_user_object = node.WhichOneof("kind") == "user_object"
        if child.local_name == "signatures" and is_user_object and node.user_object.identifier == SIGNATURE_MAP:
            return node
    return None


def signature_children(meta: Any) -> dict[str, Any]:
    """Signature key -> child reference in the signature map (empty without one)."""
    node = signature_map(meta)
    return {child.local_name: child for child in node.children} if node is not None else {}


def function_def(meta: Any, name: str) -> Any | None:
    for function in meta.graph_def.library.function:
        if function.signature.name == name:
            return function
    return None


def call_nodes(meta: Any, function_name: str) -> list[Any]:
    return [node for node in meta.graph_def.node if node.op in CALL_OPS and node.attr["f"].func.name == function_name]


def signature_function(meta: Any, key: str) -> SignatureFunction:
    """Resolve signature `key` of the object graph down to its FunctionDef and call nodes."""
    child = signature_children(meta).get(key)
    if child is None:
        raise UnsupportedModel(f"the object graph has no signature '{key}' although signature_def has it")
    node = meta.object_graph_def.nodes[child.node_id]
    if node.WhichOneof("kind") != "bare_concrete_function":
        raise UnsupportedModel(
            f"signature '{key}' is a {node.WhichOneof('kind')} object in the object graph, not a concrete function",
            hint="pass --drop-object-graph to edit it the TF1 way",
        )
    name = node.bare_concrete_function.concrete_function_name
    concrete = meta.object_graph_def.concrete_functions.get(name)
    fdef = function_def(meta, name)
    if concrete is None or fdef is None:
        raise UnsupportedModel(f"signature '{key}' names function '{name}', which the SavedModel does not hold")
    inputs = concrete.canonicalized_input_signature
    if (
        inputs.WhichOneof("kind") != "tuple_value"
        or len(inputs.tuple_value.values) != 2
        or inputs.tuple_value.values[1].WhichOneof("kind") != "dict_value"
        or concrete.output_signature.WhichOneof("kind") != "dict_value"
    ):
        raise UnsupportedModel(
            f"signature '{key}' of the object graph does not take and return dicts of tensors",
            hint="pass --drop-object-graph to edit it the TF1 way",
        )
    return SignatureFunction(
        key=key, node_id=child.node_id, name=name, concrete=concrete, bare=node.bare_concrete_function,
        function_def=fdef, calls=call_nodes(meta, name),
    )  # fmt: skip


# --------------------------------------------------------------------------- signature map


def rename_signature(meta: Any, old: str, new: str) -> None:
    children = signature_children(meta)
    if old in children:
        children[old].local_name = new


def remove_signature(meta: Any, key: str) -> None:
    node = signature_map(meta)
    if node is None:
        return
    for index, child in enumerate(node.children):
        if child.local_name == key:
            del node.children[index]
            return


def copy_signature(meta: Any, key: str, new: str) -> None:
    """A second key for the same concrete function (as Keras does for `serve`/`serving_default`)."""
    node = signature_map(meta)
    child = signature_children(meta).get(key)
    if node is None or child is None:
        return
    node.children.add(node_id=child.node_id, local_name=new)


def drop_object_graph(meta: Any) -> None:
    """Make a TF2 export a TF1-style one: `tf.saved_model.load` then reads `signature_def`.

    `__saved_model_init_op` must leave `signature_def` too: the TF1-in-TF2
    loader treats every entry as a signature and fails to prune an init op
    that depends on an asset placeholder. The main-op collection (written by
    `tf.saved_model.save` as well) keeps it running under both loaders.
    """
    meta.ClearField("object_graph_def")
    if INIT_OP_SIGNATURE in meta.signature_def:
        init = meta.signature_def[INIT_OP_SIGNATURE].outputs[INIT_OP_SIGNATURE].name
        collection = meta.collection_def[MAIN_OP_COLLECTION].node_list.value
        if init and init not in collection:
            collection.append(init)
        del meta.signature_def[INIT_OP_SIGNATURE]


# --------------------------------------------------------------------------- cloning


def private_signature_function(meta: Any, key: str) -> SignatureFunction:
    """The signature's function, cloned first if anything else uses it."""
    function = signature_function(meta, key)
    return _clone(meta, function) if _is_shared(meta, function) else function


def _is_shared(meta: Any, function: SignatureFunction) -> bool:
    children = signature_children(meta)
    if sum(1 for child in children.values() if child.node_id == function.node_id) > 1:
        return True
    nodes = meta.object_graph_def.nodes
    users = sum(1 for node in nodes if function.name in concrete_function_names(node))
    if users > 1 or len(function.calls) > 1 or _called_from_functions(meta, function.name):
        return True
    call_names = {call.name for call in function.calls}
    for other_key, signature in meta.signature_def.items():
        if other_key != function.key and _tensor_nodes(signature) & call_names:
            return True
    return False


def concrete_function_names(node: Any) -> list[str]:
    """The concrete functions an object-graph node (a tf.function or a bare concrete function) holds."""
    kind = node.WhichOneof("kind")
    if kind == "bare_concrete_function":
        return [node.bare_concrete_function.concrete_function_name]
    if kind == "function":
        return list(node.function.concrete_functions)
    return []


def _called_from_functions(meta: Any, name: str) -> bool:
    for function in meta.graph_def.library.function:
        for node in function.node_def:
            for value in node.attr.values():
                if value.WhichOneof("value") == "func" and value.func.name == name:
                    return True
    return False


def _tensor_nodes(signature: Any) -> set[str]:
    return {node_of(name) for name in signature_tensor_names(signature)}


def signature_tensor_names(signature: Any) -> list[str]:
    names: list[str] = []
    for info in [*signature.inputs.values(), *signature.outputs.values()]:
        names.extend(tensor_info_names(info))
    return names


def tensor_info_names(info: Any) -> list[str]:
    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        return [info.name]
    if encoding == "coo_sparse":
        coo = info.coo_sparse
        return [coo.values_tensor_name, coo.indices_tensor_name, coo.dense_shape_tensor_name]
    if encoding == "composite_tensor":
        return [n for component in info.composite_tensor.components for n in tensor_info_names(component)]
    return []


def _unique(existing: set[str], base: str) -> str:
    for number in range(1, 10_000):
        candidate = f"{base}_smsurgery{number}"
        if candidate not in existing:
            return candidate
    raise InternalError(f"no free name for a copy of {base}")


def _clone(meta: Any, function: SignatureFunction) -> SignatureFunction:
    """Copy FunctionDef, concrete function, object node and call node(s) for this signature alone."""
    library = meta.graph_def.library
    new_name = _unique({f.signature.name for f in library.function}, function.name)
    fdef = library.function.add()
    fdef.CopyFrom(function.function_def)
    fdef.signature.name = new_name
    meta.object_graph_def.concrete_functions[new_name].CopyFrom(function.concrete)
    nodes = meta.object_graph_def.nodes
    node = nodes.add()
    node.CopyFrom(nodes[function.node_id])
    node.bare_concrete_function.concrete_function_name = new_name
    node_id = len(nodes) - 1
    signature_children(meta)[function.key].node_id = node_id
    renames: dict[str, str] = {}
    node_names = {n.name for n in meta.graph_def.node}
    signature = meta.signature_def.get(function.key) if function.key in meta.signature_def else None
    used = _tensor_nodes(signature) if signature is not None else set()
    for call in function.calls:
        if call.name not in used:
            continue
        copy = meta.graph_def.node.add()
        copy.CopyFrom(call)
        copy.name = _unique(node_names, call.name)
        node_names.add(copy.name)
        copy.attr["f"].func.name = new_name
        renames[call.name] = copy.name
    if signature is not None and renames:
        rewrite_signature_tensors(signature, lambda node_, index: (renames.get(node_, node_), index))
    clone = signature_function(meta, function.key)
    if clone.name != new_name:
        raise InternalError(f"cloning {function.name} did not repoint signature '{function.key}'")
    return clone


# --------------------------------------------------------------------------- tensor name rewriting

Remap = Callable[[str, int], "tuple[str, int | None]"]


def _split(name: str) -> tuple[str, int]:
    from smsurgery.core.graphmodel import parse_input  # here: show and check import this module, never _split

    read = parse_input(name, in_function=False, lenient=True)
    return read.node, read.index


def rewrite_signature_tensors(signature: Any, remap: Remap) -> None:
    for info in [*signature.inputs.values(), *signature.outputs.values()]:
        _rewrite_info(info, remap)


def _rewrite_info(info: Any, remap: Remap) -> None:
    def one(name: str) -> str:
        node, index = _split(name)
        new_node, new_index = remap(node, index)
        if new_index is None:
            raise InternalError(f"tensor {name} of a signature was removed")
        return name if (new_node, new_index) == (node, index) else f"{new_node}:{new_index}"

    encoding = info.WhichOneof("encoding")
    if encoding == "name":
        info.name = one(info.name)
    elif encoding == "coo_sparse":
        coo = info.coo_sparse
        coo.values_tensor_name = one(coo.values_tensor_name)
        coo.indices_tensor_name = one(coo.indices_tensor_name)
        coo.dense_shape_tensor_name = one(coo.dense_shape_tensor_name)
    elif encoding == "composite_tensor":
        for component in info.composite_tensor.components:
            _rewrite_info(component, remap)


def remap_call_outputs(meta: Any, call_name: str, mapping: dict[int, int | None]) -> None:
    """Outputs of `call_name` moved (old index -> new index): fix every consumer."""

    def remap(node: str, index: int) -> tuple[str, int | None]:
        return (node, mapping.get(index, index)) if node == call_name else (node, index)

    for node in meta.graph_def.node:
        for position, text in enumerate(node.input):
            if text.startswith("^"):
                continue
            source, index = _split(text)
            if source == call_name and index in mapping:
                if mapping[index] is None:
                    raise UnsupportedModel(f"node '{node.name}' of the graph uses the removed output {text}")
                node.input[position] = f"{source}:{mapping[index]}"
    for key, signature in meta.signature_def.items():
        if key != INIT_OP_SIGNATURE:  # its "tensor" is an op name
            rewrite_signature_tensors(signature, remap)


# --------------------------------------------------------------------------- permutations


def _reorder(repeated: Any, order: list[int], count: int) -> None:
    """Put items [0, count) of a repeated field in `order` (indices into the old list); keep the rest."""
    copies = [_copy(item) for item in repeated]
    new = [copies[i] for i in order] + copies[count:]
    del repeated[:]
    if new and hasattr(new[0], "CopyFrom"):
        for item in new:
            repeated.add().CopyFrom(item)
    else:
        repeated.extend(new)


def _copy(item: Any) -> Any:
    if hasattr(item, "CopyFrom"):
        clone = type(item)()
        clone.CopyFrom(item)
        return clone
    return item


def permute_inputs(meta: Any, function: SignatureFunction, order: list[int]) -> None:
    """New flat input j is old flat input order[j], for the first len(order) (signature) inputs."""
    count = len(order)
    inverse = {old: new for new, old in enumerate(order)}
    fdef = function.function_def
    _reorder(fdef.signature.input_arg, order, count)
    arg_attr = {k: _copy(v) for k, v in fdef.arg_attr.items()}
    fdef.ClearField("arg_attr")
    for index, value in arg_attr.items():
        fdef.arg_attr[inverse.get(index, index)].CopyFrom(value)
    unique_ids = dict(fdef.resource_arg_unique_id)
    fdef.ClearField("resource_arg_unique_id")
    for index, value in unique_ids.items():
        fdef.resource_arg_unique_id[inverse.get(index, index)] = value
    if "_input_shapes" in fdef.attr and len(fdef.attr["_input_shapes"].list.shape) >= count:
        _reorder(fdef.attr["_input_shapes"].list.shape, order, count)
    for call in function.calls:
        data = [text for text in call.input if not text.startswith("^")]
        control = [text for text in call.input if text.startswith("^")]
        data = [data[i] for i in order] + data[count:]
        del call.input[:]
        call.input.extend(data + control)
        if "Tin" in call.attr:
            _reorder(call.attr["Tin"].list.type, order, count)
        if "_read_only_resource_inputs" in call.attr:
            indices = [inverse.get(i, i) for i in call.attr["_read_only_resource_inputs"].list.i]
            del call.attr["_read_only_resource_inputs"].list.i[:]
            call.attr["_read_only_resource_inputs"].list.i.extend(sorted(indices))


def select_outputs(meta: Any, function: SignatureFunction, order: list[int]) -> None:
    """New flat output j is old output order[j]; outputs left out are removed."""
    fdef = function.function_def
    old_count = len(fdef.signature.output_arg)
    dropped = {fdef.signature.output_arg[i].name for i in range(old_count) if i not in order}
    _reorder(fdef.signature.output_arg, order, old_count)
    for name in dropped:
        del fdef.ret[name]
    mapping: dict[int, int | None] = {i: None for i in range(old_count)}
    mapping.update({old: new for new, old in enumerate(order)})
    for call in function.calls:
        if "Tout" in call.attr:
            _reorder(call.attr["Tout"].list.type, order, old_count)
        if "_output_shapes" in call.attr and len(call.attr["_output_shapes"].list.shape) == old_count:
            _reorder(call.attr["_output_shapes"].list.shape, order, old_count)
        remap_call_outputs(meta, call.name, mapping)


# --------------------------------------------------------------------------- alias edits


def _rename_key(fields: Any, old: str, new: str) -> None:
    value = _copy(fields[old])
    if value.WhichOneof("kind") == "tensor_spec_value" and value.tensor_spec_value.name:
        value.tensor_spec_value.name = new
    del fields[old]
    fields[new].CopyFrom(value)


def _order_after_rename(before: list[str], old: str, new: str) -> list[int]:
    after = sorted(new if name == old else name for name in before)
    return [before.index(old if name == new else name) for name in after]


def rename_input(meta: Any, key: str, old: str, new: str) -> None:
    function = private_signature_function(meta, key)
    before = sorted(function.kwargs)
    order = _order_after_rename(before, old, new)
    _rename_key(function.kwargs, old, new)
    permute_inputs(meta, function, order)
    position = sorted(function.kwargs).index(new)
    arg = function.function_def.arg_attr[position]
    if "_user_specified_name" in arg.attr:
        arg.attr["_user_specified_name"].s = new.encode()
    _rename_keywords(function, old, new)


def _rename_keywords(function: SignatureFunction, old: str, new: str) -> None:
    """`argument_keywords` and the fullargspec of the bare function (what a later save reads back)."""
    bare = function.bare
    keywords = [new if k == old else k for k in bare.argument_keywords]
    was_sorted = list(bare.argument_keywords) == sorted(bare.argument_keywords)
    del bare.argument_keywords[:]
    bare.argument_keywords.extend(sorted(keywords) if was_sorted else keywords)
    spec = bare.function_spec.fullargspec.named_tuple_value
    for item in spec.values:
        if item.key not in ("args", "kwonlyargs") or item.value.WhichOneof("kind") != "list_value":
            continue
        values = item.value.list_value.values
        names = [v.string_value for v in values]
        if old not in names:
            continue
        names = [new if n == old else n for n in names]
        if item.key == "kwonlyargs" and was_sorted:
            names.sort()
        del values[:]
        for name in names:
            values.add().string_value = name


def rename_output(meta: Any, key: str, old: str, new: str) -> None:
    function = private_signature_function(meta, key)
    before = sorted(function.outputs)
    order = _order_after_rename(before, old, new)
    _rename_key(function.outputs, old, new)
    if order != list(range(len(order))):
        select_outputs(meta, function, order)


def remove_output(meta: Any, key: str, alias: str) -> None:
    function = private_signature_function(meta, key)
    before = sorted(function.outputs)
    order = [i for i, name in enumerate(before) if name != alias]
    del function.outputs[alias]
    select_outputs(meta, function, order)
