"""Signature edits whose tensors live inside functions: add an output, repoint one, add a signature.

`signatures.add_output`, `repoint` and `add_signature` come here when the
model has an object graph (TF2 exports) or when the tensor is not in the
main graph. The tensor is named as `smsurgery tensors` prints it (an
address, a bare name unique across the signature's functions, or
`layer:NAME` for a Keras layer's output) and threaded out to the main
graph by `function_outputs`. With an object graph kept, the signature's
concrete function gets the new key in its `output_signature`, and its
results are put back in sorted-key order, so both loaders agree.

A new signature is a copy of the signature whose functions compute the
tensors (`serving_default` first): same inputs, its own wrapper, concrete
function and signature-map child (the copy is cloned on first change, so
the original stays as it was), then the new outputs threaded in and the
copied outputs removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import DtypeMismatch, InvalidEdit, SmsurgeryError, TensorNotFound, UnsupportedModel, listing
from smsurgery.core.graphmodel import MAIN, GraphModel, parse_input
from smsurgery.core.model import INIT_OP_SIGNATURE, shape_text
from smsurgery.core.node_outputs import base_dtype
from smsurgery.core.tensor_index import SignatureTensors, TensorEntry, layer_output, resolve, signature_tensors
from smsurgery.core.tensors import GraphIndex, proto_shape_text, same_shape
from smsurgery.edits import objectgraph
from smsurgery.edits.function_outputs import Threaded, output_spec, private_wrapper, thread_out

LAYER_PREFIX = "layer:"


def find(meta: Any, key: str, text: str) -> TensorEntry:
    """The entry `text` names among signature `key`'s tensors (address, unique bare name, `layer:NAME`)."""
    found = signature_tensors(GraphModel(meta), key)
    return _find(found, text)


def _find(found: SignatureTensors, text: str) -> TensorEntry:
    if text.startswith(LAYER_PREFIX):
        return layer_output(found, text[len(LAYER_PREFIX) :])
    return resolve(found, text)


def needs_function_route(meta: Any, tensor: str) -> bool:
    """True unless `tensor` is a plain main-graph tensor of a model without an object graph."""
    if objectgraph.has_object_graph(meta) or tensor.startswith(LAYER_PREFIX) or "::" in tensor:
        return True
    if not meta.graph_def.library.function:  # a plain TF1 graph: the main graph is all there is
        return False
    try:
        node = parse_input(tensor, in_function=False).node
    except SmsurgeryError:
        return True  # not a graph name: the function route explains what it is not
    return node not in {n.name for n in meta.graph_def.node}


def _refuse_main(meta: Any, entry: TensorEntry, what: str) -> None:
    if entry.ref.scope == MAIN and objectgraph.has_object_graph(meta):
        raise UnsupportedModel(
            f"{what}: '{entry.address}' is a main-graph tensor of a TF2 export; tf.saved_model.load runs the "
            "signature's function, which cannot return it",
            hint="name a tensor inside the signature's functions (smsurgery tensors lists them), "
            "or pass --drop-object-graph",
        )


def _info(threaded: Threaded) -> Any:
    info = protos.tensor_info_class()()
    info.name = f"{threaded.call}:{threaded.index}"
    info.dtype = threaded.dtype
    info.tensor_shape.CopyFrom(threaded.shape)
    return info


def describe(entry: TensorEntry) -> str:
    dtype = protos.dtype_name(entry.dtype) if entry.dtype is not None else "unknown"
    return f"{entry.address} {dtype} {shape_text(entry.shape)}"


def _publish_output(meta: Any, key: str, alias: str, entry: TensorEntry) -> None:
    """Thread `entry` out of the signature's private wrapper as output `alias`, in both views of a TF2 export."""
    wrapper = private_wrapper(meta, key)
    threaded = thread_out(meta, wrapper, entry, alias)
    meta.signature_def[key].outputs[alias].CopyFrom(_info(threaded))
    if wrapper.function is not None:
        function = objectgraph.signature_function(meta, key)
        before = sorted(function.outputs)
        function.outputs[alias].CopyFrom(output_spec(alias, threaded.dtype, threaded.shape))
        order = [threaded.index if a == alias else before.index(a) for a in sorted(function.outputs)]
        objectgraph.select_outputs(meta, function, order)


def add_output(meta: Any, key: str, alias: str, tensor: str | TensorEntry) -> TensorEntry:
    """Expose `tensor` as output `alias` of `key`; returns the entry it resolved to."""
    entry = tensor if isinstance(tensor, TensorEntry) else find(meta, key, tensor)
    _refuse_main(meta, entry, f"cannot add output '{alias}'")
    if entry.ref.scope == MAIN:
        raise InvalidEdit(f"'{entry.address}' is a main-graph tensor", hint="pass it as NODE:INDEX")
    _publish_output(meta, key, alias, entry)
    return entry


def repoint_output(meta: Any, key: str, alias: str, tensor: str) -> tuple[str, TensorEntry]:
    """Point output `alias` of `key` at a function-internal tensor; returns (old tensor, new entry)."""
    entry = find(meta, key, tensor)
    _refuse_main(meta, entry, f"cannot repoint output '{alias}'")
    current = meta.signature_def[key].outputs[alias]
    if entry.dtype is not None and base_dtype(entry.dtype) != base_dtype(current.dtype):
        raise DtypeMismatch(
            f"'{entry.address}' is {protos.dtype_name(entry.dtype)} but output '{alias}' of '{key}' is "
            f"{protos.dtype_name(current.dtype)}",
            hint="repoint to a tensor of the same dtype (a Cast inside the function, for example)",
        )
    old = current.name
    _publish_output(meta, key, alias, entry)
    return old, entry


def repoint_input(meta: Any, key: str, alias: str, tensor: str) -> tuple[str, str]:
    """Feed input `alias` of a TF2 signature through another main-graph placeholder; (old, new) names.

    Sound only for a placeholder: the TF1 view then feeds that placeholder
    into the signature's call node, while `tf.saved_model.load` keeps calling
    the same function with the same argument, so both views compute the same
    thing. Its dtype and shape must be the argument's (the function was
    traced for them). Anything else is refused with the reason.
    """
    index = GraphIndex(GraphModel(meta))
    if not index.exists(tensor) or index.tensor(tensor).op != "Placeholder":
        refuse_input(meta, key, alias, tensor)
    target = index.tensor(tensor)
    current = meta.signature_def[key].inputs[alias]
    if target.dtype != current.dtype or not same_shape(target.shape, current.tensor_shape):
        raise DtypeMismatch(
            f"placeholder '{target.name}' is {target.dtype_name} {proto_shape_text(target.shape)} but input "
            f"'{alias}' of '{key}' is {protos.dtype_name(current.dtype)} {proto_shape_text(current.tensor_shape)}",
            hint="a TF2 signature's function was traced for its inputs' dtype and shape",
        )
    old = current.name
    wrapper = private_wrapper(meta, key)
    position = sorted(meta.signature_def[key].inputs).index(alias)
    data = [i for i, text in enumerate(wrapper.call.input) if not text.startswith("^")]
    wrapper.call.input[data[position]] = target.name
    meta.signature_def[key].inputs[alias].name = target.name
    return old, target.name


def refuse_input(meta: Any, key: str, alias: str, tensor: str) -> None:
    """Inputs of a TF2 signature are arguments of its function: say why a tensor cannot become one."""
    try:
        entry = find(meta, key, tensor)
    except SmsurgeryError:
        entry = None
    where = f"'{entry.address}' ({entry.op})" if entry is not None else f"'{tensor}'"
    if entry is not None and entry.ref.scope != MAIN:
        reason = "it is computed inside a function; only the signature function's arguments can be fed"
    else:
        reason = (
            "tf.saved_model.load feeds a TF2 signature through its function's arguments, and only a placeholder of "
            "the main graph can stand for one under the TF1 loader"
        )
    raise UnsupportedModel(
        f"input '{alias}' of '{key}' cannot be repointed to {where}: {reason}",
        hint="add a signature with the inputs you need, or pass --drop-object-graph",
    )


# --------------------------------------------------------------------------- new signatures


def _base_signature(meta: Any, outputs: Mapping[str, str]) -> tuple[str, dict[str, TensorEntry]]:
    """The signature whose functions compute every output (serving_default first) and the entries.

    An output may also name one of that signature's own outputs (its
    main-graph tensor, `StatefulPartitionedCall:0`): it is kept as it is.
    """
    keys = sorted(k for k in meta.signature_def if k != INIT_OP_SIGNATURE)
    keys.sort(key=lambda k: k != "serving_default")
    model = GraphModel(meta)
    first_error: SmsurgeryError | None = None
    for key in keys:
        found = signature_tensors(model, key)
        try:
            entries = {alias: _find(found, text) for alias, text in outputs.items()}
        except (TensorNotFound, InvalidEdit, UnsupportedModel) as error:
            first_error = first_error or error
            continue
        own = _own_outputs(meta, key)
        if all(e.ref.scope != MAIN or e.address in own for e in entries.values()):
            return key, entries
    if first_error is not None:
        raise first_error
    raise UnsupportedModel(
        "on a TF2 export a new signature's outputs must be tensors inside a signature's functions, or outputs of "
        "that signature",
        hint="smsurgery tensors PATH lists them; or pass --drop-object-graph",
    )


def _own_outputs(meta: Any, key: str) -> dict[str, str]:
    """Tensor name -> alias of signature `key`'s outputs."""
    return {info.name: alias for alias, info in meta.signature_def[key].outputs.items() if info.name}


def add_signature(
    meta: Any, key: str, inputs: Mapping[str, str], outputs: Mapping[str, str], method_name: str
) -> tuple[str, dict[str, TensorEntry]]:
    """A new signature `key` computing `outputs` (function-internal tensors); returns (base key, entries)."""
    base, entries = _base_signature(meta, outputs)
    own = _own_outputs(meta, base)
    kept = {alias: own[e.address] for alias, e in entries.items() if e.ref.scope == MAIN}
    renames = _input_aliases(meta, base, inputs)
    meta.signature_def[key].CopyFrom(meta.signature_def[base])
    meta.signature_def[key].method_name = method_name
    if objectgraph.has_object_graph(meta):
        objectgraph.copy_signature(meta, base, key)
    copied = sorted(meta.signature_def[key].outputs)
    temporary = {alias: f"smsurgery_new_{position}" for position, alias in enumerate(sorted(entries))}
    for alias, old in kept.items():
        _rename(meta, key, "outputs", old, temporary[alias])
    for alias, entry in entries.items():
        if alias not in kept:
            add_output(meta, key, temporary[alias], entry)
    for alias in copied:
        if alias in kept.values():
            continue
        del meta.signature_def[key].outputs[alias]
        if objectgraph.has_object_graph(meta):
            objectgraph.remove_output(meta, key, alias)
    for alias, temp in temporary.items():
        _rename(meta, key, "outputs", temp, alias)
    for old, new in renames.items():
        _rename(meta, key, "inputs", old, new)
    return base, entries


def _input_aliases(meta: Any, base: str, inputs: Mapping[str, str]) -> dict[str, str]:
    """Old alias -> new alias for the base's inputs; every base input must be given (or none)."""
    signature = meta.signature_def[base]
    if not inputs:
        return {}
    by_tensor = {info.name: alias for alias, info in signature.inputs.items()}
    renames: dict[str, str] = {}
    for alias, tensor in inputs.items():
        name = tensor if ":" in tensor else f"{tensor}:0"
        if name not in by_tensor:
            entry = None
            with contextlib.suppress(SmsurgeryError):
                entry = find(meta, base, tensor)
            reason = (
                f"'{entry.address}' is computed inside a function and cannot be fed"
                if entry is not None and entry.ref.scope != MAIN
                else f"'{tensor}' is not an input of signature '{base}', whose function computes the outputs"
            )
            raise InvalidEdit(
                f"input '{alias}': {reason}",
                hint=f"inputs of '{base}': " + listing(f"{a}={i.name}" for a, i in sorted(signature.inputs.items())),
            )
        renames[by_tensor[name]] = alias
    missing = sorted(set(signature.inputs) - set(renames))
    if missing:
        raise InvalidEdit(
            f"the new signature runs the function of '{base}', which needs its inputs {listing(missing)} too",
            hint="give every input of '" + base + "' or none (then they are taken as they are)",
        )
    return renames


def _rename(meta: Any, key: str, side: str, old: str, new: str) -> None:
    if old == new:
        return
    tensors = getattr(meta.signature_def[key], side)
    tensors[new].CopyFrom(tensors[old])
    del tensors[old]
    if objectgraph.has_object_graph(meta):
        rename = objectgraph.rename_input if side == "inputs" else objectgraph.rename_output
        rename(meta, key, old, new)
