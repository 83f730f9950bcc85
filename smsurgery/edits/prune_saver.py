"""Shrink a TF1 saver to the variables that stay (a pure proto edit of the main graph).

A TF1 export's saver is a few main-graph nodes (`tf.compat.v1.train.Saver`):
`RestoreV2(prefix, tensor_names, shape_and_slices)` whose output i is
assigned (`Assign`, or `Identity` then `AssignVariableOp`) to one variable,
a `NoOp` (`restore_shard`) that control-depends on every assignment, and
`SaveV2(prefix, tensor_names, shape_and_slices, tensors...)`. The names and
slices are `Const` string vectors, the `dtypes` attr one type per entry.
Dropping a variable removes its entry from both ops (names, slices, dtypes,
tensors), renumbers the restore outputs the other assignments read, and
removes the control edge to its assignment, which nothing reaches then.
Entries whose variable cannot be told are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smsurgery.edits.prune_collections import node_name

VARIABLE_OPS = frozenset({"VariableV2", "Variable", "VarHandleOp", "AutoReloadVariable"})
ASSIGN_OPS = frozenset({"Assign", "AssignVariableOp"})


@dataclass(frozen=True)
class Entry:
    """Output `index` of RestoreV2 node `restore`: checkpoint key `key`, slice `slice`, into `variable`."""

    restore: str
    index: int
    key: str
    slice: str
    variable: str | None


def strings(node: Any) -> list[str] | None:
    """The values of a string `Const`; None for anything else."""
    if node is None or node.op != "Const":
        return None
    return [value.decode("utf-8", errors="replace") for value in node.attr["value"].tensor.string_val]


def _tensor(name: str, index: int) -> str:
    return name if index == 0 else f"{name}:{index}"


def _consumers(graph: Any) -> dict[str, list[Any]]:
    """Data input tensor ("node" or "node:i") -> the nodes reading it."""
    result: dict[str, list[Any]] = {}
    for node in graph.node:
        for text in node.input:
            if not text.startswith("^"):
                result.setdefault(text[:-2] if text.endswith(":0") else text, []).append(node)
    return result


def _assigned_variable(tensor: str, consumers: dict[str, list[Any]]) -> str | None:
    """The variable the assignment reading `tensor` (through Identity nodes) writes to."""
    seen: set[str] = set()
    todo = [tensor]
    while todo:
        current = todo.pop()
        for node in consumers.get(current, []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op in ASSIGN_OPS and len(node.input) > 1 and node.input[1] in (current, current + ":0"):
                return node_name(node.input[0])
            if node.op == "Identity":
                todo.append(node.name)
    return None


def restore_entries(meta: Any) -> list[Entry] | None:
    """Every entry of every main-graph RestoreV2; None when one is not the saver's pattern."""
    graph = meta.graph_def
    by_name = {node.name: node for node in graph.node}
    restores = [node for node in graph.node if node.op == "RestoreV2"]
    consumers = _consumers(graph) if restores else {}
    entries: list[Entry] = []
    for node in restores:
        if len(node.input) < 3:
            return None
        keys, slices = (strings(by_name.get(node_name(node.input[i]))) for i in (1, 2))
        if keys is None or slices is None or len(keys) != len(slices):
            return None
        for index, (key, part) in enumerate(zip(keys, slices, strict=False)):
            variable = _assigned_variable(_tensor(node.name, index), consumers)
            entries.append(Entry(node.name, index, key, part, variable))
    return entries


def set_strings(node: Any, values: list[str]) -> None:
    """Make a string-vector `Const` hold `values` (its shape and `_output_shapes` follow)."""
    tensor = node.attr["value"].tensor
    del tensor.string_val[:]
    tensor.string_val.extend(value.encode() for value in values)
    if tensor.tensor_shape.dim:
        tensor.tensor_shape.dim[0].size = len(values)
    for shape in node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []:
        if shape.dim:
            shape.dim[0].size = len(values)


def keep_dtypes(node: Any, kept: list[int]) -> None:
    """Keep the `dtypes` (and RestoreV2's `_output_shapes`) of the entries `kept`."""
    types = list(node.attr["dtypes"].list.type)
    del node.attr["dtypes"].list.type[:]
    node.attr["dtypes"].list.type.extend(types[i] for i in kept)
    if node.op == "RestoreV2" and "_output_shapes" in node.attr:  # one shape per restored tensor
        shapes = [_copy_shape(s) for s in node.attr["_output_shapes"].list.shape]
        del node.attr["_output_shapes"].list.shape[:]
        node.attr["_output_shapes"].list.shape.extend(shapes[i] for i in kept if i < len(shapes))


def _copy_shape(shape: Any) -> Any:
    copy = type(shape)()
    copy.CopyFrom(shape)
    return copy


def _shrink_op(node: Any, by_name: dict[str, Any], dropped: set[tuple[str, str]], edited: set[str]) -> list[int]:
    """Drop the `dropped` (key, slice) pairs from one SaveV2/RestoreV2; the indices kept, in order."""
    names_node, slices_node = (by_name[node_name(node.input[i])] for i in (1, 2))
    keys, slices = strings(names_node) or [], strings(slices_node) or []
    kept = [i for i, pair in enumerate(zip(keys, slices, strict=False)) if pair not in dropped]
    if len(kept) == len(keys):
        return kept
    for const, values in ((names_node, keys), (slices_node, slices)):
        if const.name not in edited:
            edited.add(const.name)
            set_strings(const, [values[i] for i in kept])
    keep_dtypes(node, kept)
    if node.op == "SaveV2":
        tensors = list(node.input[3 : 3 + len(keys)])
        rest = list(node.input[3 + len(keys) :])  # control inputs
        del node.input[3:]
        node.input.extend([tensors[i] for i in kept] + rest)
    return kept


def shrink(meta: Any, drop: Iterable[Entry]) -> list[str]:
    """Remove the `drop` entries from every SaveV2 and RestoreV2; the checkpoint keys no entry restores now."""
    drop = list(drop)
    if not drop:
        return []
    graph = meta.graph_def
    by_name = {node.name: node for node in graph.node}
    pairs = {(entry.key, entry.slice) for entry in drop}
    edited: set[str] = set()
    renumber: dict[str, str | None] = {}
    for node in graph.node:
        if node.op not in ("SaveV2", "RestoreV2") or len(node.input) < 3:
            continue
        count = len(node.attr["dtypes"].list.type)
        kept = _shrink_op(node, by_name, pairs, edited)
        if node.op == "RestoreV2" and len(kept) != count:
            position = {old: new for new, old in enumerate(kept)}
            for old in range(count):
                new = position.get(old)
                renumber[_tensor(node.name, old)] = None if new is None else _tensor(node.name, new)
    dropped_readers = set()
    for node in graph.node:
        for i, text in enumerate(node.input):
            if text.startswith("^"):
                continue
            tensor = text[:-2] if text.endswith(":0") else text
            if tensor in renumber:
                if renumber[tensor] is None:
                    dropped_readers.add(node.name)
                else:
                    node.input[i] = renumber[tensor]  # type: ignore[assignment]
    assignments = _assignments_of(graph, dropped_readers)
    for node in graph.node:
        kept_inputs = [text for text in node.input if not (text.startswith("^") and text[1:] in assignments)]
        if len(kept_inputs) != len(node.input):
            del node.input[:]
            node.input.extend(kept_inputs)
    restored = {e.key for e in restore_entries(meta) or []}
    return sorted({entry.key for entry in drop} - restored)


def _assignments_of(graph: Any, readers: set[str]) -> set[str]:
    """The readers of dropped restore outputs and every Identity/assignment downstream of them."""
    consumers = _consumers(graph)
    result, todo = set(), list(readers)
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        todo.extend(n.name for n in consumers.get(name, []) if n.op in ASSIGN_OPS or n.op == "Identity")
    return result
