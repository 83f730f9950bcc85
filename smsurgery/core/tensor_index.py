"""The tensors a signature computes, in the main graph and in every function it reaches.

This is what `smsurgery tensors` lists and what every edit that takes a
tensor resolves against: the user may give the exact `address` that
`tensors` prints (`node:0` in the main graph, `FUNCTION::node:arg:0` inside
a function), a bare name when it is unique across the signature's functions
(`pool_1/Mean`, `model_1/pool_1/Mean:output:0`), or `--layer NAME` for a
Keras layer. Unknown names get the closest addresses.

Keras 3 traces a model `m` with layers `a`, `b` under the name scopes
`m_1/a_1/...`, `m_1/b_1/...` (the `_N` counters make scopes unique); Keras 2
without the counters (`sequential/dense/MatMul`). The layer of a node is the
second scope component, with the counter removed when the model scope has
one too.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InvalidEdit, SignatureNotFound, TensorNotFound, listing
from smsurgery.core.graphmodel import MAIN, SCOPE_SEPARATOR, GraphModel, TensorRef, parse_address, parse_input
from smsurgery.core.model import INIT_OP_SIGNATURE, shape_of

TENSORS_SCHEMA = "smsurgery.tensors/1"
_COUNTER = re.compile(r"^(?P<name>.+)_\d+$")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a signature's computation, with what the protos say about it."""

    ref: TensorRef
    op: str
    dtype: int | None
    shape: tuple[int, ...] | None
    layer: str | None
    context: str | None  # None: reachable by plain calls; else e.g. "While body of model_1/while"

    @property
    def address(self) -> str:
        return self.ref.address

    @property
    def fetchable(self) -> bool:
        return self.context is None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address, "name": self.ref.local_name, "function": self.ref.scope or None,
            "node": self.ref.node, "op": self.op,
            "dtype": protos.dtype_name(self.dtype) if self.dtype is not None else None,
            "shape": list(self.shape) if self.shape is not None else None,
            "layer": self.layer, "context": self.context,
        }  # fmt: skip


@dataclass
class SignatureTensors:
    """Every tensor of one signature, and the functions it reaches (name -> context)."""

    key: str
    entries: list[TensorEntry]
    functions: dict[str, str | None]
    model: GraphModel = field(repr=False, compare=False)

    def layers(self) -> list[str]:
        return sorted({e.layer for e in self.entries if e.layer})


def default_key(meta: Any) -> str:
    keys = sorted(k for k in meta.signature_def if k != INIT_OP_SIGNATURE)
    if not keys:
        raise SignatureNotFound("this meta graph has no signatures")
    return "serving_default" if "serving_default" in keys else keys[0]


def signature_tensors(model: GraphModel, key: str | None = None) -> SignatureTensors:
    """The tensors signature `key` computes: main-graph nodes its outputs need, then its functions."""
    meta = model.meta
    key = key or default_key(meta)
    if key == INIT_OP_SIGNATURE or key not in meta.signature_def:
        keys = sorted(k for k in meta.signature_def if k != INIT_OP_SIGNATURE)
        raise SignatureNotFound(f"no signature '{key}'", hint=f"it has: {listing(keys)}")
    signature = meta.signature_def[key]
    roots = [parse_input(i.name, in_function=False).node for i in signature.outputs.values() if i.name]
    main_nodes = model.upstream(MAIN, roots)
    entries = [_entry(model, ref, None, None) for n in sorted(main_nodes) for ref in _node_refs(model, MAIN, n)]
    functions = _reached_functions(model, main_nodes)
    for name, context in functions.items():
        keras = _keras_prefix(model, name) if context is None else None
        for ref in model.refs(name):
            entries.append(_entry(model, ref, _layer(ref, keras), context))
    return SignatureTensors(key, entries, functions, model)


def _node_refs(model: GraphModel, scope: str, node: str) -> list[TensorRef]:
    return [] if model.scope(scope).nodes[node].op == "NoOp" else model.scope(scope).output_refs(node)


def _entry(model: GraphModel, ref: TensorRef, layer: str | None, context: str | None) -> TensorEntry:
    op = "Arg" if ref.is_argument else model.scope(ref.scope).nodes[ref.node].op
    return TensorEntry(ref, op, model.dtype(ref), shape_of(model.shape(ref)), layer, context)


def _reached_functions(model: GraphModel, main_nodes: set[str]) -> dict[str, str | None]:
    """Function -> None when plain calls reach it, else where its values live (loop/branch body)."""
    found: dict[str, str | None] = {}
    queue = [(c, None) for n in sorted(main_nodes) for c in model.calls(MAIN, n)]
    while queue:
        call, context = queue.pop(0)
        if call.kind != "call" and context is None:
            where = "body" if call.attr == "body" else "condition" if call.attr == "cond" else "branch"
            context = f"{model.scope(call.scope).nodes[call.node].op} {where} of {call.node}"
        if call.function in found and (found[call.function] is None or context is not None):
            continue
        found[call.function] = context
        queue.extend((c, context) for c in model.callees(call.function))
    return found


def _keras_prefix(model: GraphModel, function: str) -> str | None:
    """The model scope (`m_1`) when most nodes of `function` sit under one; None otherwise.

    Keras 3 scopes carry a counter (`m_1`); Keras 2 traces functions named
    `..._call_...` or `..._wrapped_model_...`. A `while/` scope of a tf.Module
    function is neither.
    """
    firsts: dict[str, int] = {}
    nodes = model.scope(function).nodes
    for name in nodes:
        if "/" in name:
            first = name.split("/", 1)[0]
            firsts[first] = firsts.get(first, 0) + 1
    if not firsts:
        return None
    top, count = max(firsts.items(), key=lambda item: item[1])
    keras_like = _COUNTER.match(top) is not None or "_call" in function or "_wrapped_model" in function
    return top if count * 2 >= len(nodes) and keras_like else None


def _layer(ref: TensorRef, keras: str | None) -> str | None:
    if keras is None or ref.is_argument or not ref.node.startswith(keras + "/"):
        return None
    parts = ref.node.split("/")
    if len(parts) < 3:
        return None
    layer = parts[1]
    if _COUNTER.match(keras):
        match = _COUNTER.match(layer)
        layer = match["name"] if match else layer
    return layer


# --------------------------------------------------------------------------- filtering


def matching(entries: list[TensorEntry], pattern: str | None, op: str | None) -> list[TensorEntry]:
    """Entries whose address or name matches `pattern` (a glob, else a regex) and whose op is `op`."""
    found = [e for e in entries if op is None or e.op == op]
    if not pattern:
        return found
    if any(ch in pattern for ch in "*?["):
        return [e for e in found if fnmatch.fnmatchcase(e.address, pattern) or fnmatch.fnmatchcase(e.ref.node, pattern)]
    try:
        regex = re.compile(pattern)
    except re.error:
        regex = re.compile(re.escape(pattern))
    return [e for e in found if regex.search(e.address)]


def closest(entries: list[TensorEntry], text: str, count: int = 5) -> list[str]:
    """The addresses nearest to `text` (compared with names and node names as well)."""
    keys: dict[str, str] = {}
    for entry in entries:
        for key in (entry.address, entry.ref.local_name, entry.ref.node):
            keys.setdefault(key, entry.address)
    close = difflib.get_close_matches(text, list(keys), n=count * 3, cutoff=0.4)
    result: list[str] = []
    for key in close:
        if keys[key] not in result:
            result.append(keys[key])
    if not result:  # compare scope components: `global_average_pooling2d` ~ `global_average_pooling2d_1`
        words = [w for w in re.split(r"[/:]", text) if w]
        parts: dict[str, str] = {}
        for entry in entries:
            for part in entry.ref.node.split("/"):
                parts.setdefault(part, entry.address)
        for word in words:
            for part in difflib.get_close_matches(word, list(parts), n=count, cutoff=0.6):
                if parts[part] not in result:
                    result.append(parts[part])
    return result[:count]


# --------------------------------------------------------------------------- resolving user names


def resolve(found: SignatureTensors, text: str) -> TensorEntry:
    """The one entry that `text` names: an exact address, or a bare name unique across the functions."""
    text = text.strip()
    by_address = {e.address: e for e in found.entries}
    if text in by_address:
        return by_address[text]
    scope, local = parse_address(text)
    if scope != MAIN:
        raise _not_found(found, text, f"signature '{found.key}' does not compute '{text}'")
    candidates = [e for e in found.entries if e.ref.scope and _bare_match(e, local)]
    if not candidates:
        candidates = [e for e in found.entries if not e.ref.scope and _bare_match(e, local)]
    if not candidates:  # a tail of the traced name: `pool_1/Mean`
        candidates = [e for e in found.entries if _bare_match(e, local, suffix=True)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise InvalidEdit(
            f"'{text}' names {len(candidates)} tensors of signature '{found.key}'",
            hint=f"give one of the addresses: {listing([e.address for e in candidates])}",
        )
    raise _not_found(found, text, f"no tensor '{text}' in signature '{found.key}' or the functions it calls")


def _bare_match(entry: TensorEntry, text: str, *, suffix: bool = False) -> bool:
    ref = entry.ref
    names = (ref.local_name, ref.node if ref.is_argument else f"{ref.node}:{ref.index}")
    if suffix:
        tails = any(name.endswith("/" + text) for name in names) or (ref.index == 0 and ref.node.endswith("/" + text))
        return ref.scope != MAIN and tails
    return text in names or (text == ref.node and ref.index == 0)


def _not_found(found: SignatureTensors, text: str, message: str) -> TensorNotFound:
    close = closest(found.entries, text.rpartition(SCOPE_SEPARATOR)[2] or text)
    hint = f"closest: {listing(close)}" if close else "`smsurgery tensors PATH` lists them"
    return TensorNotFound(message, hint=hint)


def layers_hint(layers: list[str], wanted: str, most: int = 30) -> str:
    """`Keras layers: a, b, c`; for a big model the closest ones to `wanted` first, and a count."""
    if len(layers) <= most:
        return f"Keras layers: {listing(layers)}"
    close = difflib.get_close_matches(wanted, layers, n=5, cutoff=0.3)
    shown = close or layers[:5]
    return f"Keras layers ({len(layers)}) include: {listing(shown)}"


def layer_output(found: SignatureTensors, layer: str) -> TensorEntry:
    """The output of Keras layer `layer`: its tensor that something outside the layer reads."""
    members = [e for e in found.entries if e.layer == layer and e.fetchable]
    if not members:
        raise TensorNotFound(
            f"no Keras layer '{layer}' in signature '{found.key}'",
            hint=layers_hint(found.layers(), layer) if found.layers() else "this export has no Keras layer scopes",
        )
    outputs = _leaving(found, layer, members)
    if len(outputs) != 1:
        raise InvalidEdit(
            f"layer '{layer}' has {len(outputs)} outputs",
            hint=f"name one: {listing([e.address for e in outputs]) or 'none found'}",
        )
    return outputs[0]


def _leaving(found: SignatureTensors, layer: str, members: list[TensorEntry]) -> list[TensorEntry]:
    layer_of = {(e.ref.scope, e.ref.node): e.layer for e in found.entries}
    result = []
    for entry in members:
        readers = _readers(found, entry)
        if any(layer_of.get((entry.ref.scope, reader)) != layer for reader in readers):
            result.append(entry)
    return result


def _readers(found: SignatureTensors, entry: TensorEntry) -> list[str]:
    """Nodes (or the function's return, as "") of the entry's scope that read this exact tensor."""
    scope = found.model.scope(entry.ref.scope)
    readers = []
    for consumer, position in scope.consumers(entry.ref.node):
        item = scope.inputs(consumer)[position]
        if not item.control and (item.arg, item.index) == (entry.ref.arg, entry.ref.index):
            readers.append(consumer)
    for value in scope.returned().values():
        if (value.node, value.arg, value.index) == (entry.ref.node, entry.ref.arg, entry.ref.index):
            readers.append("")
    return readers


# --------------------------------------------------------------------------- the `tensors` command


def list_tensors(
    path: Any, pattern: str | None = None, *, signature: str | None = None, op: str | None = None,
    tags: tuple[str, ...] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What `smsurgery tensors` prints: the matching tensors of one signature, as a JSON-able dict."""
    from smsurgery.core.model import read

    model = read(path)
    meta = model.meta_graph(tags)
    found = signature_tensors(GraphModel(meta.proto), signature)
    entries = matching(found.entries, pattern, op)
    if not entries:
        what = " and ".join(w for w in (f"pattern '{pattern}'" if pattern else "", f"op {op}" if op else "") if w)
        close = closest(found.entries, pattern or op or "")
        hint = f"closest: {listing(close)}" if close else f"it computes {len(found.entries)} tensors"
        if found.layers():
            hint += "; " + layers_hint(found.layers(), pattern or "")
        raise TensorNotFound(f"{what} matches no tensor of signature '{found.key}'", hint=hint)
    return {
        "schema": TENSORS_SCHEMA, "path": str(model.ref), "tags": list(meta.tags), "signature": found.key,
        "pattern": pattern, "op": op, "count": len(entries), "total": len(found.entries),
        "functions": [{"name": name, "context": context} for name, context in found.functions.items()],
        "layers": found.layers(), "tensors": [e.to_json() for e in entries],
    }  # fmt: skip
