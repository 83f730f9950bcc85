"""Pure edits of a meta graph's signatures: `signature_def` and the TF2 object graph in step.

Every function takes a MetaGraphDef proto (our private pool, see `protos`),
changes it in place and returns an `EditReport` of what changed; nothing
reads or writes files and nothing imports TensorFlow. For a TF1 export
`signature_def` is all there is. For a TF2 export (object graph present)
each edit also changes what `tf.saved_model.load` reads (see `objectgraph`),
or is refused when the object graph cannot express it without a new
computation (add a signature, add an output, repoint): the caller may then
drop the object graph first (`objectgraph.drop_object_graph`), after which
both loaders read `signature_def`.

The same edits as values (`RenameSignature(...)`, ...), to apply several in
one go and to read them from JSON, are in `smsurgery.edits.kinds`.
"""

from __future__ import annotations

import keyword
import unicodedata
from collections.abc import Mapping
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import (
    AliasNotFound,
    DtypeMismatch,
    InvalidEdit,
    InvalidName,
    NameCollision,
    SignatureNotFound,
    UnsupportedModel,
    listing,
)
from smsurgery.core.graphmodel import GraphModel
from smsurgery.core.tensors import GraphIndex, base_dtype, proto_shape_text, same_shape, unfed_placeholders
from smsurgery.edits import inner_edits, objectgraph
from smsurgery.edits.changes import Change, EditReport

DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = objectgraph.INIT_OP_SIGNATURE
METHODS = {
    "predict": "tensorflow/serving/predict",
    "classify": "tensorflow/serving/classify",
    "regress": "tensorflow/serving/regress",
}
SIDES = ("inputs", "outputs")


# --------------------------------------------------------------------------- checks


def user_keys(meta: Any) -> list[str]:
    return sorted(k for k in meta.signature_def if k != INIT_OP_SIGNATURE)


def _signature(meta: Any, key: str) -> Any:
    if key == INIT_OP_SIGNATURE or key not in meta.signature_def:
        raise SignatureNotFound(f"no signature '{key}'", hint=f"it has: {listing(user_keys(meta))}")
    return meta.signature_def[key]


def _bad_characters(name: str) -> bool:
    return any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in name)


def check_signature_key(name: str) -> None:
    """Keys reach clients in URLs and JSON: non-empty, no whitespace or control characters."""
    if not name:
        raise InvalidName("a signature key must not be empty")
    if _bad_characters(name):
        raise InvalidName(f"signature key {name!r} contains whitespace or control characters")
    if name == INIT_OP_SIGNATURE:
        raise InvalidName(f"'{INIT_OP_SIGNATURE}' is reserved for the init op of TF2 exports")


def check_alias(meta: Any, name: str, side: str) -> None:
    """Aliases are JSON keys for Serving; TF2 input aliases are also keyword arguments of a Python call.

    Observed with TensorFlow 2.21: `tf.saved_model.load` accepts input
    aliases that are not Python identifiers (`my-input`, `a/b`, `1x`: it
    binds them through `**kwargs`), but fails to load a signature whose
    input is a Python keyword (`'class' is not a valid parameter name`), and
    `self` collides with `ConcreteFunction.__call__`. Those are refused.
    """
    what = "an input" if side == "inputs" else "an output"
    if not name:
        raise InvalidName(f"{what} alias must not be empty")
    if _bad_characters(name):
        raise InvalidName(f"alias {name!r} contains whitespace or control characters")
    if side == "inputs" and objectgraph.has_object_graph(meta) and (keyword.iskeyword(name) or name == "self"):
        raise InvalidName(
            f"input alias {name!r} cannot be a keyword argument: tf.saved_model.load passes a TF2 export's "
            "inputs as Python keyword arguments, and Python keywords and 'self' break it",
            hint="choose another name",
        )


def _side(signature: Any, key: str, alias: str, side: str | None) -> str:
    """Which side (inputs/outputs) holds `alias`; ask when both do."""
    if side is not None:
        if side not in SIDES:
            raise InvalidEdit(f"side must be inputs or outputs, not '{side}'")
        if alias not in getattr(signature, side):
            raise AliasNotFound(
                f"signature '{key}' has no {side[:-1]} '{alias}'",
                hint=f"its {side}: {listing(sorted(getattr(signature, side)))}",
            )
        return side
    found = [s for s in SIDES if alias in getattr(signature, s)]
    if len(found) == 2:
        raise InvalidEdit(f"'{alias}' is both an input and an output of '{key}'", hint="say which (--input/--output)")
    if not found:
        raise AliasNotFound(
            f"signature '{key}' has no input or output '{alias}'",
            hint=f"inputs: {listing(sorted(signature.inputs))}; outputs: {listing(sorted(signature.outputs))}",
        )
    return found[0]


def _tensor_info(meta: Any, tensor: str) -> tuple[Any, Any]:
    """A TensorInfo for graph tensor `tensor`, dtype and shape from the graph."""
    found = GraphIndex(GraphModel(meta)).tensor(tensor)
    if found.dtype is None:
        raise UnsupportedModel(
            f"cannot tell the dtype of '{found.name}' (op {found.op}) from the graph",
            hint="point at an Identity of it, or at a tensor whose op declares its dtype",
        )
    info = protos.tensor_info_class()()
    info.name = found.name
    info.dtype = found.dtype
    info.tensor_shape.CopyFrom(found.shape)
    return info, found


def _unfed(meta: Any, signature: Any) -> list[str]:
    outputs = [n for info in signature.outputs.values() for n in objectgraph.tensor_info_names(info)]
    inputs = [n for info in signature.inputs.values() for n in objectgraph.tensor_info_names(info)]
    return unfed_placeholders(GraphIndex(GraphModel(meta)), outputs, inputs)


def _check_fed(meta: Any, key: str, signature: Any, before: list[str]) -> None:
    """Refuse a signature whose outputs need a placeholder it does not take as input."""
    missing = [name for name in _unfed(meta, signature) if name not in before]
    if missing:
        raise InvalidEdit(
            f"signature '{key}' would need a value for placeholder(s) {listing(missing)}, not among its inputs",
            hint="add it as an input, or use a tensor that the signature's inputs determine",
        )


# --------------------------------------------------------------------------- signature edits


def rename_signature(meta: Any, old: str, new: str) -> EditReport:
    _signature(meta, old)
    check_signature_key(new)
    if new in meta.signature_def:
        raise NameCollision(f"signature '{new}' already exists", hint=f"signatures: {listing(user_keys(meta))}")
    meta.signature_def[new].CopyFrom(meta.signature_def[old])
    del meta.signature_def[old]
    objectgraph.rename_signature(meta, old, new)
    return EditReport([Change("rename_signature", old, old=old, new=new, detail=f"signature '{old}' -> '{new}'")])


def remove_signature(meta: Any, key: str) -> EditReport:
    _signature(meta, key)
    if len(user_keys(meta)) == 1:
        raise InvalidEdit(f"'{key}' is the last signature; a model without signatures cannot be served")
    del meta.signature_def[key]
    objectgraph.remove_signature(meta, key)
    return EditReport([Change("remove_signature", key, detail=f"signature '{key}' removed")])


def copy_signature(meta: Any, key: str, new: str) -> EditReport:
    """Serve signature `key` under a second key too (same tensors, same function)."""
    _signature(meta, key)
    check_signature_key(new)
    if new in meta.signature_def:
        raise NameCollision(f"signature '{new}' already exists")
    meta.signature_def[new].CopyFrom(meta.signature_def[key])
    objectgraph.copy_signature(meta, key, new)
    return EditReport([Change("copy_signature", key, old=key, new=new, detail=f"signature '{key}' also as '{new}'")])


def set_default(
    meta: Any, key: str, *, previous: str | None = None, drop_previous: bool = False, keep: bool = False
) -> EditReport:
    """Make `key` the `serving_default` signature (the one Serving uses without a signature name).

    The signature it replaces is renamed to `previous` or removed
    (`drop_previous`); one of them is required so that nothing disappears
    by accident. `keep` serves `key` under its own name as well.
    `previous == key` swaps the two.
    """
    _signature(meta, key)
    if key == DEFAULT_SIGNATURE:
        raise InvalidEdit(f"'{key}' is already the default signature")
    if previous is not None and drop_previous:
        raise InvalidEdit("give either a new name for the previous default or drop it, not both")
    report = EditReport()
    has_default = DEFAULT_SIGNATURE in meta.signature_def
    if has_default and previous is None and not drop_previous:
        raise NameCollision(
            f"signature '{DEFAULT_SIGNATURE}' exists",
            hint="pass --previous NAME to keep it under another key, or --drop-previous to remove it",
        )
    if not has_default and (previous is not None or drop_previous):
        report.warnings.append(f"there was no '{DEFAULT_SIGNATURE}' to rename or drop")
        previous, drop_previous = None, False
    if previous is not None:
        check_signature_key(previous)
        if previous in meta.signature_def and not (previous == key and not keep):
            raise NameCollision(f"signature '{previous}' already exists", hint="choose another name for --previous")
    moving = key
    if previous == key and not keep:  # swap through a temporary name
        moving = _free_key(meta, f"{key}__smsurgery_swap")
        report.extend(rename_signature(meta, key, moving))
    if has_default and previous is not None:
        report.extend(rename_signature(meta, DEFAULT_SIGNATURE, previous))
    elif has_default:
        del meta.signature_def[DEFAULT_SIGNATURE]
        objectgraph.remove_signature(meta, DEFAULT_SIGNATURE)
        report.changes.append(Change("remove_signature", DEFAULT_SIGNATURE, detail="previous default removed"))
    if keep:
        report.extend(copy_signature(meta, moving, DEFAULT_SIGNATURE))
    else:
        report.extend(rename_signature(meta, moving, DEFAULT_SIGNATURE))
    return report


def _free_key(meta: Any, base: str) -> str:
    candidate, number = base, 1
    while candidate in meta.signature_def:
        number += 1
        candidate = f"{base}{number}"
    return candidate


def add_signature(
    meta: Any, key: str, inputs: Mapping[str, str], outputs: Mapping[str, str], method: str = "predict"
) -> EditReport:
    """A new signature from tensors already in the graph (alias -> tensor name)."""
    check_signature_key(key)
    if key in meta.signature_def:
        raise NameCollision(f"signature '{key}' already exists", hint=f"signatures: {listing(user_keys(meta))}")
    method_name = METHODS.get(method, method)
    if method_name not in METHODS.values():
        raise InvalidEdit(f"unknown method '{method}'", hint="predict, classify or regress")
    if not outputs:
        raise InvalidEdit(f"signature '{key}' needs at least one output")
    if any(inner_edits.needs_function_route(meta, tensor) for tensor in outputs.values()):
        return _add_inner_signature(meta, key, inputs, outputs, method, method_name)
    signature = protos.signature_def_class()()
    signature.method_name = method_name
    for side, tensors in (("inputs", inputs), ("outputs", outputs)):
        for alias, tensor in tensors.items():
            check_alias(meta, alias, side)
            getattr(signature, side)[alias].CopyFrom(_tensor_info(meta, tensor)[0])
    _check_method(key, signature)
    _check_fed(meta, key, signature, [])
    meta.signature_def[key].CopyFrom(signature)
    detail = (
        f"signature '{key}' added ({method}): "
        + ", ".join(f"{a}={signature.inputs[a].name}" for a in sorted(signature.inputs))
        + " -> "
        + ", ".join(f"{a}={signature.outputs[a].name}" for a in sorted(signature.outputs))
    )
    return EditReport([Change("add_signature", key, new=method_name, detail=detail)])


def _add_inner_signature(
    meta: Any, key: str, inputs: Mapping[str, str], outputs: Mapping[str, str], method: str, method_name: str
) -> EditReport:
    for side, tensors in (("inputs", inputs), ("outputs", outputs)):
        for alias in tensors:
            check_alias(meta, alias, side)
    base, entries = inner_edits.add_signature(meta, key, inputs, outputs, method_name)
    _check_method(key, meta.signature_def[key])
    signature = meta.signature_def[key]
    detail = (
        f"signature '{key}' added ({method}, runs the function of '{base}'): "
        + ", ".join(f"{a}={signature.inputs[a].name}" for a in sorted(signature.inputs))
        + " -> "
        + ", ".join(f"{a}={entries[a].address}" for a in sorted(entries))
    )
    return EditReport([Change("add_signature", key, new=method_name, detail=detail)])


def method_problems(signature: Any) -> list[str]:
    """TensorFlow's own rules for classify and regress signatures (signature_def_utils)."""
    string, floats = protos.dtype_numbers()["DT_STRING"], protos.dtype_numbers()["DT_FLOAT"]
    method = signature.method_name.rsplit("/", 1)[-1]
    if method not in ("classify", "regress"):
        return []
    found = []
    if set(signature.inputs) != {"inputs"} or base_dtype(signature.inputs["inputs"].dtype) != string:
        found.append(f"a {method} signature takes one DT_STRING input named 'inputs' (serialized tf.Example)")
    allowed = {"classes": string, "scores": floats} if method == "classify" else {"outputs": floats}
    if any(a not in allowed or base_dtype(i.dtype) != allowed[a] for a, i in signature.outputs.items()):
        wanted = " and/or ".join(f"{a} ({protos.dtype_name(d)})" for a, d in allowed.items())
        found.append(f"a {method} signature's outputs are {wanted}")
    return found


def _check_method(key: str, signature: Any) -> None:
    found = method_problems(signature)
    if found:
        raise InvalidEdit(f"signature '{key}': {found[0]}", hint="or make it a predict signature (--method predict)")


def _method_warnings(key: str, signature: Any, before: list[str]) -> list[str]:
    """Edits of aliases may break Serving's Classify/Regress API: say so, do not refuse."""
    return [
        f"signature '{key}' no longer works with Serving's {signature.method_name.rsplit('/', 1)[-1]} API: {p}"
        for p in method_problems(signature)
        if p not in before
    ]


# --------------------------------------------------------------------------- alias edits


def rename_alias(meta: Any, key: str, old: str, new: str, *, side: str | None = None) -> EditReport:
    signature = _signature(meta, key)
    side = _side(signature, key, old, side)
    check_alias(meta, new, side)
    tensors = getattr(signature, side)
    if new in tensors:
        raise NameCollision(f"signature '{key}' already has an {side[:-1]} '{new}'")
    before = method_problems(signature)
    tensors[new].CopyFrom(tensors[old])
    del tensors[old]
    if objectgraph.has_object_graph(meta):
        rename = objectgraph.rename_input if side == "inputs" else objectgraph.rename_output
        rename(meta, key, old, new)
    detail = f"{side[:-1]} '{old}' of '{key}' -> '{new}'"
    change = Change("rename_alias", key, alias=old, side=side, old=old, new=new, detail=detail)
    return EditReport([change], _method_warnings(key, signature, before))


def add_output(meta: Any, key: str, alias: str, tensor: str) -> EditReport:
    signature = _signature(meta, key)
    check_alias(meta, alias, "outputs")
    if alias in signature.outputs:
        raise NameCollision(f"signature '{key}' already has an output '{alias}'")
    if inner_edits.needs_function_route(meta, tensor):
        before = method_problems(signature)
        entry = inner_edits.add_output(meta, key, alias, tensor)
        detail = f"output '{alias}' of '{key}' added: {inner_edits.describe(entry)}"
        change = Change("add_output", key, alias=alias, side="outputs", new=entry.address, detail=detail)
        return EditReport([change], _method_warnings(key, signature, before))
    info, found = _tensor_info(meta, tensor)
    before, unfed = method_problems(signature), _unfed(meta, signature)
    signature.outputs[alias].CopyFrom(info)
    _check_fed(meta, key, signature, unfed)
    detail = f"output '{alias}' of '{key}' added: {found.name} {found.dtype_name} {proto_shape_text(found.shape)}"
    change = Change("add_output", key, alias=alias, side="outputs", new=found.name, detail=detail)
    return EditReport([change], _method_warnings(key, signature, before))


def remove_output(meta: Any, key: str, alias: str) -> EditReport:
    signature = _signature(meta, key)
    _side(signature, key, alias, "outputs")
    if len(signature.outputs) == 1:
        raise InvalidEdit(f"'{alias}' is the last output of '{key}'; remove the signature instead")
    old = signature.outputs[alias].name or alias
    before = method_problems(signature)
    del signature.outputs[alias]
    if objectgraph.has_object_graph(meta):
        objectgraph.remove_output(meta, key, alias)
    detail = f"output '{alias}' of '{key}' removed"
    change = Change("remove_output", key, alias=alias, side="outputs", old=old, detail=detail)
    return EditReport([change], _method_warnings(key, signature, before))


def repoint(meta: Any, key: str, alias: str, tensor: str, *, side: str | None = None) -> EditReport:
    """Point an input or output alias at another tensor of the graph (same dtype)."""
    signature = _signature(meta, key)
    side = _side(signature, key, alias, side)
    current = getattr(signature, side)[alias]
    if current.WhichOneof("encoding") != "name":
        raise UnsupportedModel(f"{side[:-1]} '{alias}' of '{key}' is a composite tensor; it cannot be repointed")
    if inner_edits.needs_function_route(meta, tensor):
        return _repoint_inner(meta, key, alias, tensor, side)
    info, found = _tensor_info(meta, tensor)
    if base_dtype(info.dtype) != base_dtype(current.dtype):
        raise DtypeMismatch(
            f"'{found.name}' is {found.dtype_name} but {side[:-1]} '{alias}' of '{key}' is "
            f"{protos.dtype_name(current.dtype)}",
            hint="repoint to a tensor of the same dtype (a Cast in the graph, for example)",
        )
    report = EditReport()
    if not same_shape(info.tensor_shape, current.tensor_shape):
        report.warnings.append(
            f"{side[:-1]} '{alias}' of '{key}' changes shape: "
            f"{proto_shape_text(current.tensor_shape)} -> {proto_shape_text(info.tensor_shape)}"
        )
    old, unfed = current.name, _unfed(meta, signature)
    current.CopyFrom(info)
    _check_fed(meta, key, signature, unfed)
    detail = f"{side[:-1]} '{alias}' of '{key}': {old} -> {found.name}"
    report.changes.append(Change("repoint", key, alias=alias, side=side, old=old, new=found.name, detail=detail))
    return report


def _repoint_inner(meta: Any, key: str, alias: str, tensor: str, side: str) -> EditReport:
    if side == "inputs":
        old, new = inner_edits.repoint_input(meta, key, alias, tensor)
        detail = f"input '{alias}' of '{key}': {old} -> {new}"
        return EditReport([Change("repoint", key, alias=alias, side=side, old=old, new=new, detail=detail)])
    before = meta.signature_def[key].outputs[alias].tensor_shape
    shape_before = proto_shape_text(before)
    old, entry = inner_edits.repoint_output(meta, key, alias, tensor)
    report = EditReport()
    after = meta.signature_def[key].outputs[alias].tensor_shape
    if proto_shape_text(after) != shape_before:
        report.warnings.append(
            f"output '{alias}' of '{key}' changes shape: {shape_before} -> {proto_shape_text(after)}"
        )
    detail = f"output '{alias}' of '{key}': {old} -> {entry.address}"
    report.changes.append(Change("repoint", key, alias=alias, side=side, old=old, new=entry.address, detail=detail))
    return report
