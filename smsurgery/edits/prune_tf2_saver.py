"""Shrink a TF2 export's saver functions to the checkpoint entries that stay (a pure proto edit).

`tf.saved_model.save` writes the TF1 saver as two main-graph calls named by
`saver_def`: the restore op calls `__inference__traced_restore_N(prefix,
handle...)`, whose `RestoreV2` output i goes through an `Identity` into
`AssignVariableOp(handle, value)`; the save tensor calls
`__inference__traced_save_N(prefix, handle..., object_graph)`, whose
`SaveV2` reads each handle through `DisableCopyOnRead`/`ReadVariableOp`/
`Identity` (older exports: several `SaveV2`/`RestoreV2` ops, the object
graph in one of its own, and the save call passes `ReadVariableOp` values
instead of handles). Dropping entries removes them from every such op
(names, slices, dtypes, tensors), renumbers the restore outputs, removes
every node that read a dropped output or handle (and control edges to
them), then the function arguments nothing reads, with the call's inputs,
`Tin` and `_read_only_resource_inputs`. The variable handles the calls no longer
take are then unreached in the main graph and leave it with prune's closure.
Anything else refuses, and prune keeps the variables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smsurgery.edits.prune_collections import node_name
from smsurgery.edits.prune_objects import OBJECT_GRAPH_KEY
from smsurgery.edits.prune_saver import keep_dtypes, set_strings, strings

CALL_OPS = frozenset({"StatefulPartitionedCall", "PartitionedCall"})


class NotTheSaver(Exception):
    """The saver is not the pattern this module knows (the reason is the message)."""


@dataclass
class Saver:
    """The two main-graph calls and the functions they call."""

    restore_call: Any
    restore_function: Any
    save_call: Any
    save_function: Any


def _called(meta: Any, name: str) -> tuple[Any, Any]:
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    call = next((n for n in meta.graph_def.node if n.name == node_name(name)), None)
    if call is None or call.op not in CALL_OPS or call.attr["f"].func.name not in library:
        raise NotTheSaver(f"the saver's '{name}' is not a call of a library function")
    function = library[call.attr["f"].func.name]
    callers = [n for n in meta.graph_def.node if n.op in CALL_OPS and n.attr["f"].func.name == function.signature.name]
    if len(callers) > 1 or any(n.op == function.signature.name for f in library.values() for n in f.node_def):
        raise NotTheSaver(f"the saver's function {function.signature.name} has other callers")
    return call, function


def find(meta: Any) -> Saver:
    """The saver of a TF2 export; NotTheSaver when it is not `tf.saved_model.save`'s."""
    saver = meta.saver_def
    if not saver.restore_op_name or not saver.save_tensor_name:
        raise NotTheSaver("the export has no saver")
    restore_call, restore_function = _called(meta, saver.restore_op_name)
    save_call, save_function = _called(meta, saver.save_tensor_name)
    return Saver(restore_call, restore_function, save_call, save_function)


def _ops(function: Any, op: str) -> list[Any]:
    nodes = [n for n in function.node_def if n.op == op]
    if not nodes:
        raise NotTheSaver(f"{function.signature.name} has no {op} op")
    return nodes


def _keys(function: Any, node: Any) -> tuple[Any, Any, list[str]]:
    by_name = {n.name: n for n in function.node_def}
    names, slices = (by_name.get(node_name(node.input[i])) for i in (1, 2))
    keys, parts = strings(names), strings(slices)
    if keys is None or parts is None or len(keys) != len(parts):
        raise NotTheSaver(f"{function.signature.name}: the {node.op} names are not constants")
    return names, slices, keys


def restored_keys(meta: Any) -> list[str]:
    """The checkpoint keys the restore function reads."""
    function = find(meta).restore_function
    return [key for node in _ops(function, "RestoreV2") for key in _keys(function, node)[2]]


def _shrink_op(function: Any, node: Any, drop: set[str]) -> list[int]:
    names, slices, keys = _keys(function, node)
    kept = [i for i, key in enumerate(keys) if key not in drop]
    if not kept:
        raise NotTheSaver(f"{function.signature.name}: every entry of {node.name} would go")
    parts = strings(slices) or []
    set_strings(names, [keys[i] for i in kept])
    set_strings(slices, [parts[i] for i in kept])
    keep_dtypes(node, kept)
    return kept


def _readers_of(function: Any, dead_names: set[str], dead_tensors: set[str]) -> set[str]:
    """Nodes reading (by data, transitively) a dead argument or node or one of the dead tensors."""
    removed: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in function.node_def:
            if node.name in removed:
                continue
            data = [text for text in node.input if not text.startswith("^")]
            if any(text in dead_tensors or node_name(text) in dead_names | removed for text in data):
                removed.add(node.name)
                changed = True
    return removed


def _remove_nodes(function: Any, removed: set[str], keep: Iterable[str]) -> set[str]:
    """Delete `removed` and the control edges to them; the names (arguments, nodes) they read."""
    if removed & set(keep):
        raise NotTheSaver(f"{function.signature.name}: the entries cannot be separated from the rest")
    if removed & {node_name(value) for value in function.ret.values()}:
        raise NotTheSaver(f"{function.signature.name}: a return value reads a dropped entry")
    read = {node_name(t) for n in function.node_def if n.name in removed for t in n.input}
    kept = [n for n in function.node_def if n.name not in removed]
    for node in kept:
        inputs = [t for t in node.input if not (t.startswith("^") and t[1:] in removed)]
        del node.input[:]
        node.input.extend(inputs)
    del function.node_def[:]
    function.node_def.extend(kept)
    for name in [k for k, v in function.control_ret.items() if v in removed]:
        del function.control_ret[name]
    outputs = [name for name in function.signature.control_output if name not in removed]
    del function.signature.control_output[:]
    function.signature.control_output.extend(outputs)
    return read - removed


def _unread_arguments(function: Any, candidates: set[str]) -> list[int]:
    read = {node_name(text) for node in function.node_def for text in node.input}
    read |= {node_name(value) for value in function.ret.values()}
    return [i for i, arg in enumerate(function.signature.input_arg) if arg.name in candidates and arg.name not in read]


def _keep_positions(repeated: Any, drop: set[int]) -> None:
    kept = [item for i, item in enumerate(repeated) if i not in drop]
    del repeated[:]
    repeated.extend(kept)


def _renumber_arg_maps(function: Any, renumber: dict[int, int]) -> None:
    """`arg_attr` and `resource_arg_unique_id` are keyed by argument position."""
    attrs = {renumber[k]: v.SerializeToString() for k, v in function.arg_attr.items() if k in renumber}
    function.arg_attr.clear()
    for key, data in attrs.items():
        function.arg_attr[key].ParseFromString(data)
    ids = {renumber[k]: v for k, v in function.resource_arg_unique_id.items() if k in renumber}
    function.resource_arg_unique_id.clear()
    function.resource_arg_unique_id.update(ids)


def _drop_arguments(function: Any, call: Any, positions: list[int]) -> list[str]:
    """Remove arguments `positions` from `function` and `call`; the main-graph inputs no longer passed."""
    drop = set(positions)
    count = len(function.signature.input_arg)
    data = [t for t in call.input if not t.startswith("^")]
    if len(data) != count or len(call.attr["Tin"].list.type) != count:
        raise NotTheSaver(f"the call of {function.signature.name} does not pass one input per argument")
    renumber = {old: new for new, old in enumerate(i for i in range(count) if i not in drop)}
    _keep_positions(function.signature.input_arg, drop)
    _renumber_arg_maps(function, renumber)
    inputs = [t for i, t in enumerate(data) if i not in drop] + [t for t in call.input if t.startswith("^")]
    del call.input[:]
    call.input.extend(inputs)
    _keep_positions(call.attr["Tin"].list.type, drop)
    if "_read_only_resource_inputs" in call.attr:
        indices = [renumber[i] for i in call.attr["_read_only_resource_inputs"].list.i if i in renumber]
        del call.attr["_read_only_resource_inputs"].list.i[:]
        call.attr["_read_only_resource_inputs"].list.i.extend(indices)
    return [node_name(data[i]) for i in positions]


def _shrink_restore(saver: Saver, drop: set[str]) -> list[str]:
    """Drop `drop` from the restore function; the main-graph handles its call no longer passes."""
    function = saver.restore_function
    read: set[str] = set()
    for restore in _ops(function, "RestoreV2"):
        count = len(restore.attr["dtypes"].list.type)
        position = {old: new for new, old in enumerate(_shrink_op(function, restore, drop))}
        prefix = f"{restore.name}:tensors:"
        dead = {f"{prefix}{i}" for i in range(count) if i not in position}
        read |= _remove_nodes(function, _readers_of(function, set(), dead), [restore.name])
        for node in function.node_def:
            for i, text in enumerate(node.input):
                if text.startswith(prefix) and int(text[len(prefix) :]) in position:
                    node.input[i] = f"{prefix}{position[int(text[len(prefix) :])]}"
    return _drop_arguments(function, saver.restore_call, _unread_arguments(function, read))


def _variable_of(by_name: dict[str, Any], name: str) -> str:
    """The handle a saver input stands for: older exports pass `ReadVariableOp` values to the save call."""
    node = by_name.get(name)
    while node is not None and node.op in ("ReadVariableOp", "Identity") and node.input:
        name = node_name(node.input[0])
        node = by_name.get(name)
    return name


def _shrink_save(saver: Saver, drop: set[str], handles: set[str], by_name: dict[str, Any]) -> list[str]:
    """Drop `drop` from the save function and the arguments that passed `handles`; the handles dropped."""
    function, call = saver.save_function, saver.save_call
    saves = _ops(function, "SaveV2")
    for save in saves:
        keys = _keys(function, save)[2]
        tensors, rest = list(save.input[3 : 3 + len(keys)]), list(save.input[3 + len(keys) :])
        del save.input[3:]
        save.input.extend([t for t, key in zip(tensors, keys, strict=True) if key not in drop] + rest)
        _shrink_op(function, save, drop)
    data = [t for t in call.input if not t.startswith("^")]
    args = function.signature.input_arg
    dead = {
        args[i].name
        for i, text in enumerate(data)
        if i < len(args) and _variable_of(by_name, node_name(text)) in handles
    }
    _remove_nodes(function, _readers_of(function, dead, set()), [save.name for save in saves])
    return _drop_arguments(function, call, _unread_arguments(function, dead))


def trackable_holder(meta: Any, saver: Saver) -> Any | None:
    """The `Const` whose string is the trackable graph the save function writes; None when there is none."""
    function = saver.save_function
    for save in _ops(function, "SaveV2"):
        keys = _keys(function, save)[2]
        if OBJECT_GRAPH_KEY in keys:
            break
    else:
        return None
    source = node_name(save.input[3 + keys.index(OBJECT_GRAPH_KEY)])
    args = [a.name for a in function.signature.input_arg]
    if source in args:
        data = [t for t in saver.save_call.input if not t.startswith("^")]
        graph, source = meta.graph_def.node, node_name(data[args.index(source)])
    else:
        graph = function.node_def
    holder = next((n for n in graph if n.name == source), None)
    if holder is None or holder.op != "Const" or len(holder.attr["value"].tensor.string_val) != 1:
        raise NotTheSaver(f"the saver writes {OBJECT_GRAPH_KEY} from something other than a constant")
    return holder


def _copy(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def shrink(meta: Any, saver: Saver, drop: set[str]) -> None:
    """Drop the checkpoint keys `drop` from both saver functions and their calls.

    The edit runs on copies and lands only whole: on NotTheSaver, `meta` is unchanged.
    """
    parts = (saver.restore_call, saver.restore_function, saver.save_call, saver.save_function)
    work = Saver(*map(_copy, parts))
    by_name = {node.name: node for node in meta.graph_def.node}
    handles = _shrink_restore(work, drop)
    dropped = _shrink_save(work, drop, set(handles), by_name)
    if sorted(_variable_of(by_name, name) for name in dropped) != sorted(handles):
        raise NotTheSaver("the save and restore functions do not take the same variables")
    edited = (work.restore_call, work.restore_function, work.save_call, work.save_function)
    for original, copy in zip(parts, edited, strict=True):
        original.CopyFrom(copy)
