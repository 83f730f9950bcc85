"""A cheap consistency check of a meta graph, run after every edit and before anything is written.

Nothing at load time checks signature tensors: a signature naming a missing
tensor loads and fails only when called, and a TF2 export whose object
graph disagrees with `signature_def` gives silently different answers under
the two loaders. `problems()` finds both kinds in milliseconds, from the
protos alone:
- every signature tensor exists in the main graph, with the declared dtype
  where the producing node tells it;
- TF2 exports: the object graph lists the same signature keys and aliases,
  the wrapper function has as many arguments and results as the signature
  (plus captures), with the same dtypes in sorted-key order, and the call
  node in the main graph feeds and returns them in that same order (the
  sort-order trap of renames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InternalError, SmsurgeryError
from smsurgery.core.graphmodel import MAIN, GraphModel, parse_input
from smsurgery.core.tensors import GraphIndex, base_dtype
from smsurgery.edits import objectgraph

INIT_OP_SIGNATURE = objectgraph.INIT_OP_SIGNATURE


@dataclass(frozen=True)
class Problem:
    """One inconsistency; `identity` stays the same when signatures or aliases are renamed."""

    text: str
    identity: tuple[str, ...]

    def __str__(self) -> str:
        return self.text


def problems(meta: Any) -> list[Problem]:
    """Every inconsistency found, one sentence each (empty when all is well)."""
    model = GraphModel(meta)
    found = _tensor_problems(meta, model)
    found.extend(Problem(text, ("call", text)) for text in _call_problems(model))
    if objectgraph.has_object_graph(meta):
        found.extend(Problem(text, ("object_graph", text)) for text in _object_graph_problems(meta))
    return found


def validate(meta: Any, baseline: Iterable[Problem] | Callable[[], Iterable[Problem]] = ()) -> None:
    """Raise `InternalError` for any problem not already in `baseline` (the source's own problems).

    An edit that leaves the model inconsistent is a bug of smsurgery, not of
    the user's input, hence InternalError; the model is never written. A
    source's own problems (a signature declaring the wrong dtype, say) are
    not the edit's fault and do not stop it.
    """
    found = problems(meta)
    if not found:
        return  # the source's own problems (a callable `baseline`) are not even computed
    known = {p.identity for p in (baseline() if callable(baseline) else baseline)}
    new = [p.text for p in found if p.identity not in known]
    if new:
        raise InternalError("the edited model is inconsistent, nothing was written: " + "; ".join(new))


def _tensor_problems(meta: Any, model: GraphModel) -> list[Problem]:
    index = GraphIndex(model)
    found: list[Problem] = []
    for key in sorted(meta.signature_def):
        if key == INIT_OP_SIGNATURE:
            continue
        signature = meta.signature_def[key]
        for side in ("inputs", "outputs"):
            tensors = getattr(signature, side)
            for alias in sorted(tensors):
                info = tensors[alias]
                for name in objectgraph.tensor_info_names(info):
                    if not index.exists(name):
                        text = f"{side[:-1]} '{alias}' of '{key}' names {name}, which is not in the graph"
                        found.append(Problem(text, ("missing", name)))
                if info.WhichOneof("encoding") == "name" and index.exists(info.name):
                    actual = index.tensor(info.name).dtype
                    if actual is not None and base_dtype(actual) != base_dtype(info.dtype):
                        text = (
                            f"{side[:-1]} '{alias}' of '{key}' declares {protos.dtype_name(info.dtype)} "
                            f"but {info.name} is {protos.dtype_name(actual)}"
                        )
                        found.append(Problem(text, ("dtype", info.name, str(info.dtype))))
    return found


def _call_problems(model: GraphModel) -> list[str]:
    """Call nodes return what their function returns; every function's rets name its own nodes.

    Threading a tensor out of nested functions changes both sides of each
    call; a mismatch loads fine and fails at the first request.
    """
    found: list[str] = []
    for scope in [MAIN, *model.function_defs]:
        for call in model.callees(scope):
            node = model.scope(scope).nodes[call.node]
            if call.kind != "call" or "Tout" not in node.attr:
                continue
            returned = [a.type for a in model.function_defs[call.function].signature.output_arg]
            if list(node.attr["Tout"].list.type) != returned:
                found.append(f"call node {call.node} in {scope or 'the main graph'} expects other results than "
                             f"{call.function} returns")  # fmt: skip
    for name, fdef in model.function_defs.items():
        scope = model.scope(name)
        for arg, value in fdef.ret.items():
            target = parse_input(value, in_function=True).node
            if target not in scope.nodes and target not in scope.args:
                found.append(f"function {name} returns {arg} from {value}, which it does not have")
    return found


def _object_graph_problems(meta: Any) -> list[str]:
    tf1 = {k for k in meta.signature_def if k != INIT_OP_SIGNATURE}
    tf2 = set(objectgraph.signature_children(meta))
    found: list[str] = []
    if tf1 != tf2:
        found.append(f"signature_def lists {sorted(tf1)} but the object graph lists {sorted(tf2)}")
    for key in sorted(tf1 & tf2):
        try:
            function = objectgraph.signature_function(meta, key)
        except SmsurgeryError as error:
            found.append(str(error))
            continue
        found.extend(_function_problems(meta.signature_def[key], function))
    return found


def _function_problems(signature: Any, function: objectgraph.SignatureFunction) -> list[str]:
    key, found = function.key, []
    inputs, outputs = sorted(function.kwargs), sorted(function.outputs)
    if inputs != sorted(signature.inputs) or outputs != sorted(signature.outputs):
        found.append(
            f"signature '{key}': signature_def has inputs {sorted(signature.inputs)} and outputs "
            f"{sorted(signature.outputs)}, the object graph {inputs} and {outputs}"
        )
        return found
    fdef = function.function_def.signature
    if len(fdef.input_arg) != len(inputs) + len(function.concrete.bound_inputs) or len(fdef.output_arg) != len(outputs):
        found.append(f"signature '{key}': function {function.name} does not take and return one tensor per alias")
        return found
    if function.bare.argument_keywords and sorted(function.bare.argument_keywords) != inputs:
        found.append(f"signature '{key}': argument_keywords {list(function.bare.argument_keywords)} != {inputs}")
    for side, aliases, args in (("input", inputs, fdef.input_arg), ("output", outputs, fdef.output_arg)):
        infos = signature.inputs if side == "input" else signature.outputs
        for position, alias in enumerate(aliases):
            declared = infos[alias]
            if declared.WhichOneof("encoding") == "name" and args[position].type != base_dtype(declared.dtype):
                found.append(
                    f"signature '{key}': {side} '{alias}' is {protos.dtype_name(declared.dtype)} in signature_def "
                    f"but {protos.dtype_name(args[position].type)} in function {function.name}"
                )
    found.extend(_call_order_problems(signature, function, inputs, outputs))
    return found


def _node(name: str) -> tuple[str, int]:
    parsed = parse_input(name, in_function=False)
    return parsed.node, parsed.index


def _call_order_problems(
    signature: Any, function: objectgraph.SignatureFunction, inputs: list[str], outputs: list[str]
) -> list[str]:
    """The TF1 view (call node) must bind each alias to the same flat position as the TF2 view."""
    key, found = function.key, []
    for call in function.calls:
        used = [
            alias for alias in outputs
            if signature.outputs[alias].WhichOneof("encoding") == "name"
            and _node(signature.outputs[alias].name)[0] == call.name
        ]  # fmt: skip
        if not used:
            continue
        for alias in used:
            index = _node(signature.outputs[alias].name)[1]
            if index != outputs.index(alias):
                found.append(
                    f"signature '{key}': output '{alias}' is {call.name}:{index} under the TF1 loader but flat "
                    f"output {outputs.index(alias)} under tf.saved_model.load"
                )
        data = [_node(text) for text in call.input if not text.startswith("^")]
        for position, alias in enumerate(inputs):
            info = signature.inputs[alias]
            if info.WhichOneof("encoding") == "name" and position < len(data) and data[position] != _node(info.name):
                found.append(
                    f"signature '{key}': input '{alias}' feeds {info.name} but the call node {call.name} takes "
                    f"flat input {position} from {data[position][0]}:{data[position][1]}"
                )
    return found
