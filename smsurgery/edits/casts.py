"""Let a signature take another input dtype and cast it to what the model expects (pure proto edits).

Clients want to send uint8 pixels to a float model, or float32 to a float16
one. The signature's input gets the new dtype and a `Cast` (optionally a
`Mul` by `--scale`, e.g. 1/255) turns it into what the graph consumed:
- TF1: the input's Placeholder `P` becomes the Cast (or Mul) under the same
  name, fed by a new Placeholder `P_<dtype>`; every consumer of `P:0` is
  unchanged, and other signatures that name `P:0` still feed it directly
  (a session can feed any tensor).
- TF2: the signature wrapper function (cloned first when shared) takes the
  new dtype and casts inside its body, so `tf.saved_model.load` runs the
  same computation; its call node reads a new main-graph Placeholder, and
  the concrete function's input TensorSpec and `Tin` follow.
Casts `tf.cast` cannot do (strings, resources, variants) are refused.

Why not the attach interface (`smsurgery.graph.attach.Preprocessor`), as
issue 16 first asked: attaching builds the new signature with TensorFlow
and saves the model again (a session re-export or a tf.function wrapper),
which imports TensorFlow for the edit itself and rewrites every other part
of the export. A cast is two nodes in front of one input; as a proto edit it
is the only cast implementation, runs without TensorFlow, keeps the rest of
the export byte for byte, and is still proved with TensorFlow before
publishing: `smsurgery.graph.casts.compare_cast` (verification only, no
second implementation) runs the new version under both loaders against the
source fed the same values cast by numpy.
"""

from __future__ import annotations

import struct
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InvalidEdit, SignatureNotFound, UnsupportedModel, listing
from smsurgery.edits import objectgraph
from smsurgery.edits.changes import Change, EditReport
from smsurgery.edits.signatures import user_keys

CASTABLE = (
    "DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16", "DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64",
    "DT_UINT8", "DT_UINT16", "DT_UINT32", "DT_UINT64", "DT_BOOL", "DT_COMPLEX64", "DT_COMPLEX128",
)  # fmt: skip
FLOATING = ("DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16")


def dtype_number(text: str) -> int:
    """`uint8` / `DT_UINT8` -> its DataType number, if `tf.cast` can cast it."""
    name = text.upper() if text.upper().startswith("DT_") else "DT_" + text.upper()
    name = {"DT_FLOAT32": "DT_FLOAT", "DT_FLOAT64": "DT_DOUBLE", "DT_FLOAT16": "DT_HALF"}.get(name, name)
    if name not in CASTABLE:
        raise InvalidEdit(f"TensorFlow cannot cast to or from {text!r}", hint=f"castable: {listing(CASTABLE)}")
    return protos.dtype_numbers()[name]


def _scale_tensor(tensor: Any, dtype: int, scale: float) -> None:
    tensor.dtype = dtype
    tensor.tensor_shape.SetInParent()
    if dtype == protos.dtype_numbers()["DT_DOUBLE"]:
        tensor.double_val.append(scale)
    elif dtype == protos.dtype_numbers()["DT_FLOAT"]:
        tensor.float_val.append(scale)
    else:  # half and bfloat16 are stored as their 16-bit patterns in half_val
        bits = struct.unpack("<H", struct.pack("<e", scale))[0]
        tensor.half_val.append(bits)


def _cast_attrs(node: Any, source: int, target: int) -> None:
    node.op = "Cast"
    node.attr["SrcT"].type = source
    node.attr["DstT"].type = target
    node.attr["Truncate"].b = False


def _check(meta: Any, key: str, alias: str, dtype: str, scale: float | None) -> tuple[Any, int, int]:
    if key not in user_keys(meta):
        raise SignatureNotFound(f"no signature '{key}'", hint=f"it has: {listing(user_keys(meta))}")
    signature = meta.signature_def[key]
    if alias not in signature.inputs:
        raise InvalidEdit(
            f"signature '{key}' has no input '{alias}'", hint=f"inputs: {listing(sorted(signature.inputs))}"
        )
    info = signature.inputs[alias]
    if not info.name:
        raise UnsupportedModel(f"input '{alias}' of '{key}' is a composite tensor; it cannot be cast")
    model_name = protos.dtype_name(info.dtype)
    if model_name not in CASTABLE:
        raise InvalidEdit(f"TensorFlow cannot cast {dtype} to {model_name} (input '{alias}' of '{key}')")
    new = dtype_number(dtype)
    if new == info.dtype:
        raise InvalidEdit(f"input '{alias}' of '{key}' is already {model_name}")
    if scale is not None and model_name not in FLOATING:
        raise InvalidEdit(f"--scale needs a floating-point model input; '{alias}' is {model_name}")
    return info, new, info.dtype


def _unique(names: set[str], base: str) -> str:
    candidate, number = base, 1
    while candidate in names:
        number += 1
        candidate = f"{base}_{number}"
    names.add(candidate)
    return candidate


def _tf1_cast(meta: Any, info: Any, new: int, old: int, scale: float | None, suffix: str) -> str:
    name = info.name.split(":")[0]
    node = next((n for n in meta.graph_def.node if n.name == name), None)
    if node is None or node.op != "Placeholder":
        found = f"a {node.op} node" if node is not None else "missing"
        raise UnsupportedModel(
            f"input tensor {info.name} is {found}, not a Placeholder; a cast can only go in front of a placeholder",
            hint="other signatures may compute it (e.g. from tf.Example); cast the input they are fed instead",
        )
    names = {n.name for n in meta.graph_def.node}
    placeholder = meta.graph_def.node.add()
    placeholder.CopyFrom(node)
    placeholder.name = _unique(names, f"{name}_{suffix}")
    placeholder.attr["dtype"].type = new
    for attr in [a for a in node.attr if a not in ("_class",)]:
        del node.attr[attr]
    if scale is None:
        _cast_attrs(node, new, old)
        node.input[:] = [placeholder.name]
    else:
        cast, value = meta.graph_def.node.add(), meta.graph_def.node.add()
        cast.name, cast.device = _unique(names, f"{name}/cast"), node.device
        _cast_attrs(cast, new, old)
        cast.input.append(placeholder.name)
        value.name, value.op, value.device = _unique(names, f"{name}/scale"), "Const", node.device
        value.attr["dtype"].type = old
        _scale_tensor(value.attr["value"].tensor, old, scale)
        node.op = "Mul"
        node.attr["T"].type = old
        node.input[:] = [cast.name, value.name]
    return f"{placeholder.name}:0"


def _tf2_cast(meta: Any, key: str, alias: str, new: int, old: int, scale: float | None, suffix: str) -> str:
    function = objectgraph.private_signature_function(meta, key)
    position = sorted(function.kwargs).index(alias)
    fdef = function.function_def
    arg = fdef.signature.input_arg[position]
    arg.type = new
    names = {n.name for n in fdef.node_def} | {a.name for a in fdef.signature.input_arg}
    cast = fdef.node_def.add()
    cast.name = _unique(names, f"{arg.name}_cast")
    _cast_attrs(cast, new, old)
    cast.input.append(arg.name)
    result = f"{cast.name}:y:0"
    if scale is not None:
        value, mul = fdef.node_def.add(), fdef.node_def.add()
        value.name, value.op = _unique(names, f"{arg.name}_scale_value"), "Const"
        value.attr["dtype"].type = old
        _scale_tensor(value.attr["value"].tensor, old, scale)
        mul.name, mul.op = _unique(names, f"{arg.name}_scale"), "Mul"
        mul.attr["T"].type = old
        mul.input.extend([result, f"{value.name}:output:0"])
        result = f"{mul.name}:z:0"
    added = {cast.name} | ({value.name, mul.name} if scale is not None else set())
    for node in fdef.node_def:
        if node.name not in added:
            node.input[:] = [result if ref == arg.name else ref for ref in node.input]
    for key_, value_ in list(fdef.ret.items()):
        if value_ == arg.name:
            fdef.ret[key_] = result
    spec = function.kwargs[alias].tensor_spec_value
    spec.dtype = new
    main_names = {n.name for n in meta.graph_def.node}
    info = meta.signature_def[key].inputs[alias]
    old_placeholder = next(n for n in meta.graph_def.node if n.name == info.name.split(":")[0])
    placeholder = meta.graph_def.node.add()
    placeholder.CopyFrom(old_placeholder)
    placeholder.name = _unique(main_names, f"{old_placeholder.name}_{suffix}")
    placeholder.attr["dtype"].type = new
    for call in function.calls:
        call.input[position] = placeholder.name
        call.attr["Tin"].list.type[position] = new
    return f"{placeholder.name}:0"


def cast_input(meta: Any, key: str, alias: str, dtype: str, scale: float | None = None) -> EditReport:
    """Signature `key` takes input `alias` as `dtype`, cast (and scaled) to the dtype the model expects."""
    info, new, old = _check(meta, key, alias, dtype, scale)
    suffix = protos.dtype_name(new)[3:].lower()
    if objectgraph.has_object_graph(meta) and key in objectgraph.signature_children(meta):
        tensor = _tf2_cast(meta, key, alias, new, old, scale, suffix)
    else:
        tensor = _tf1_cast(meta, info, new, old, scale, suffix)
    info.name, info.dtype = tensor, new
    detail = f"input '{alias}' of '{key}' takes {protos.dtype_name(new)} (cast to {protos.dtype_name(old)}"
    detail += f", times {scale})" if scale is not None else ")"
    detail += f", fed to {tensor}"
    return EditReport([Change("cast_input", key, alias=alias, side="inputs", old=protos.dtype_name(old),
                              new=protos.dtype_name(new), detail=detail)])  # fmt: skip
