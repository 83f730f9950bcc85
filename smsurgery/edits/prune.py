"""Drop what no signature needs: nodes, functions, variables and their checkpoint entries (proto edits).

What the loaders need is kept: everything upstream (data and control inputs)
of the tensors of every `signature_def` entry (the init-op signature
included), of the init and asset collections and `asset_file_def`
(`prune_collections`), and of the saver's filename; every function those
nodes call or name in an attr, and every function the object graph's
concrete functions name, with the functions they call.

Variables: a variable stays when one of those roots reaches it (or the
initializer of a variable that stays does). The others (optimizer slots and
beta powers, EMA copies, `global_step`) go from a TF1 saver
(`prune_saver.shrink`), from the variable collections, and then from the
graph with every node only they reached (the training ops); their
checkpoint entries go when the new version is written
(`Prune.rewrite_files`, TensorFlow's own writer in
`smsurgery.graph.checkpoint_rewrite`). In a TF2 export a variable stays
when a concrete function of the object graph captures it; the others leave
the object graph and the trackable graph (`prune_objects`) and the saver
functions (`prune_tf2_saver`), and their handles the main graph. Variables
stay as they are when another meta graph shares the checkpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from smsurgery.core import protos
from smsurgery.edits import objectgraph, prune_collections, prune_objects, prune_saver, prune_tf2_saver
from smsurgery.edits.changes import Change, EditReport
from smsurgery.edits.prune_collections import node_name


@dataclass
class Pruned:
    """What one prune removed from a meta graph."""

    nodes: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    checkpoint_keys: list[str] = field(default_factory=list)
    collection_entries: list[str] = field(default_factory=list)
    objects: int = 0  # object-graph nodes dropped (TF2)
    variables_kept_because: str | None = None  # why no variable was considered, if none could be

    def __bool__(self) -> bool:
        return bool(self.nodes or self.functions or self.checkpoint_keys or self.collection_entries or self.objects)


def _serving_roots(meta: Any) -> set[str]:
    roots = {node_name(name) for s in meta.signature_def.values() for name in objectgraph.signature_tensor_names(s)}
    if meta.saver_def.filename_tensor_name:
        roots.add(node_name(meta.saver_def.filename_tensor_name))
    return roots | prune_collections.roots(meta)


def _saver_roots(meta: Any) -> set[str]:
    saver = meta.saver_def
    return {node_name(n) for n in (saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name) if n}


def _functions_named(holder: Any) -> Iterator[str]:
    """Function names in a node's (or FunctionDef's) attrs: func values, and strings, to be safe
    (`_forward_function_name` / `_backward_function_name` name gradient functions as strings)."""
    for value in holder.attr.values():
        kind = value.WhichOneof("value")
        if kind == "func":
            yield value.func.name
        elif kind == "s":
            yield value.s.decode(errors="replace")
        elif kind == "list":
            yield from (f.name for f in value.list.func)
            yield from (text.decode(errors="replace") for text in value.list.s)


def _closure(by_name: dict[str, Any], roots: Iterable[str]) -> set[str]:
    reached, todo = set(), [r for r in roots if r in by_name]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(n for n in map(node_name, by_name[name].input) if n in by_name and n not in reached)
    return reached


def _variables_reached(meta: Any, by_name: dict[str, Any]) -> set[str]:
    """Nodes the serving roots reach, with the initializers of the variables among them, to a fixpoint."""
    roots = _serving_roots(meta)
    while True:
        reached = _closure(by_name, roots)
        variables = {n for n in reached if by_name[n].op in prune_saver.VARIABLE_OPS}
        more = prune_collections.variable_roots(meta, variables) - roots
        if not more:
            return reached
        roots |= more


def _reached_functions(meta: Any, nodes: Iterable[Any]) -> set[str]:
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    todo = [name for node in nodes for name in _functions_named(node)]
    todo += [node.op for node in nodes if node.op in library]  # functions called as ops
    todo += list(meta.object_graph_def.concrete_functions)
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in library:
            continue
        reached.add(name)
        function = library[name]
        todo.extend(n for node in function.node_def for n in _functions_named(node))
        todo.extend(_functions_named(function))
        todo.extend(n for n in (node.op for node in function.node_def) if n in library)
    return reached


def _why_variables_stay(saved: Any | None, meta: Any, entries: list[prune_saver.Entry] | None) -> str | None:
    if saved is not None and len(saved.meta_graphs) > 1:
        return "another meta graph shares the checkpoint"
    if objectgraph.has_object_graph(meta):
        return None
    if entries is None:
        return "the saver is not the RestoreV2/SaveV2 pattern prune knows"
    return None


def prune_meta(meta: Any, saved: Any | None = None) -> Pruned:
    """Remove from `meta` what no signature, init op, asset or kept variable needs; what went."""
    result = Pruned()
    by_name = {node.name: node for node in meta.graph_def.node}
    entries = prune_saver.restore_entries(meta)
    result.variables_kept_because = _why_variables_stay(saved, meta, entries)
    tf2 = objectgraph.has_object_graph(meta)
    if result.variables_kept_because is None and tf2:
        _prune_tf2_variables(meta, result)
        roots = _serving_roots(meta) | _saver_roots(meta)
    elif result.variables_kept_because is None and entries:
        reached = _variables_reached(meta, by_name)
        drop = [e for e in entries if e.variable is not None and e.variable not in reached]
        result.checkpoint_keys = prune_saver.shrink(meta, drop)
        roots = reached | _saver_roots(meta)
    else:
        roots = _serving_roots(meta) | _saver_roots(meta)
        variables = {n for n in _closure(by_name, roots) if by_name[n].op in prune_saver.VARIABLE_OPS}
        roots |= {node_name(d.variable_name) for d in prune_collections.variable_defs(meta)} | variables
    reached = _closure(by_name, roots)
    reached = _closure(by_name, reached | prune_collections.variable_roots(meta, reached))
    result.collection_entries = prune_collections.drop_unreached(meta, reached)
    kept = [node for node in meta.graph_def.node if node.name in reached]
    result.nodes = [node.name for node in meta.graph_def.node if node.name not in reached]
    library = meta.graph_def.library
    functions = _reached_functions(meta, kept)
    result.functions = [f.signature.name for f in library.function if f.signature.name not in functions]
    if result.nodes:
        del meta.graph_def.node[:]
        meta.graph_def.node.extend(kept)
    if result.functions:
        drop_functions = set(result.functions)
        kept_functions = [f for f in library.function if f.signature.name not in drop_functions]
        del library.function[:]
        library.function.extend(kept_functions)
        kept_gradients = [g for g in library.gradient if g.function_name not in drop_functions]
        del library.gradient[:]
        library.gradient.extend(kept_gradients)
    return result


def _prune_tf2_variables(meta: Any, result: Pruned) -> None:
    """Drop the variables no concrete function captures from the object graph, trackable graph and saver."""
    chosen = prune_objects.plan(meta)
    if chosen is None:
        return
    try:
        saver = prune_tf2_saver.find(meta)
        holder = prune_tf2_saver.trackable_holder(meta, saver)
        if holder is None:
            raise prune_tf2_saver.NotTheSaver(f"the saver writes no {prune_objects.OBJECT_GRAPH_KEY}")
        trackable = prune_objects.trackables(holder.attr["value"].tensor.string_val[0])
        trackable_plan = prune_objects.trackable_plan(meta.object_graph_def, trackable, chosen)
        keys = prune_objects.checkpoint_keys(trackable, trackable_plan)
        prune_tf2_saver.shrink(meta, saver, set(keys))
    except prune_tf2_saver.NotTheSaver as reason:
        result.variables_kept_because = str(reason)
        return
    holder.attr["value"].tensor.string_val[0] = prune_objects.prune_trackables(trackable, trackable_plan)
    result.objects = len(meta.object_graph_def.nodes) - len(chosen.keep)
    prune_objects.prune_saved_objects(meta, chosen)
    result.checkpoint_keys = sorted(keys)


def unreached(meta: Any, saved: Any | None = None) -> Pruned:
    """What `prune_meta` would remove, `meta` left as it is."""
    copy = protos.meta_graph_class()()
    copy.CopyFrom(meta)
    return prune_meta(copy, saved)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def prune(meta: Any, saved: Any | None = None) -> EditReport:
    """Remove what `unreached` lists; a warning when there is nothing."""
    before = meta.ByteSize()
    pruned = prune_meta(meta, saved)
    if not pruned:
        return EditReport(warnings=["nothing to prune: every node, function and variable is reached"])
    nodes, functions, keys = pruned.nodes, pruned.functions, pruned.checkpoint_keys
    detail = f"pruned {len(nodes)} nodes and {len(functions)} functions nothing reaches ({_shown(nodes + functions)})"
    if keys:
        detail += f", {len(keys)} checkpoint entries no signature reads ({_shown(keys)})"
    if pruned.objects:
        detail += f", {pruned.objects} object-graph nodes"
    detail += f"; meta graph {before} -> {meta.ByteSize()} bytes"
    old = f"{len(nodes)} nodes, {len(functions)} functions, {len(keys)} variables"
    return EditReport([Change("prune", "", old=old, detail=detail)])


def restored_keys(saved: Any) -> set[str] | None:
    """The checkpoint keys the savers of `saved` restore; None when one of them is not a pattern prune knows."""
    keys: set[str] = set()
    for meta in saved.meta_graphs:
        if objectgraph.has_object_graph(meta):
            try:
                keys |= set(prune_tf2_saver.restored_keys(meta))
            except prune_tf2_saver.NotTheSaver:
                return None
            continue
        entries = prune_saver.restore_entries(meta)
        if entries is None:
            return None
        keys |= {entry.key for entry in entries}
    return keys or None  # no saver restores anything: leave the files alone


def new_values(saved: Any) -> dict[str, Callable[[bytes], bytes]]:
    """Checkpoint entries whose value changes with the prune: a TF2 export's trackable graph.

    The pruned one is the saver's `Const` copy, with the checkpoint's own
    variable names (`prune_objects.with_full_names`).
    """
    for meta in saved.meta_graphs:
        if not objectgraph.has_object_graph(meta):
            continue
        try:
            holder = prune_tf2_saver.trackable_holder(meta, prune_tf2_saver.find(meta))
        except prune_tf2_saver.NotTheSaver:
            continue
        if holder is not None:
            pruned = holder.attr["value"].tensor.string_val[0]
            return {prune_objects.OBJECT_GRAPH_KEY: functools.partial(prune_objects.with_full_names, pruned)}
    return {}
