"""Drop what nothing reaches: main-graph nodes and library functions (a pure proto edit).

After signatures are removed, the nodes and functions only they used stay
in `saved_model.pb`. What the loaders need is kept: everything upstream
(data and control inputs) of the tensors of every `signature_def` entry
(the init-op signature included), of the saver's filename, save and restore
ops, and of every node a collection names (init ops, assets, table
initializers, and, conservatively, the variables and training collections,
because the TF1 loader re-imports collections and fails on a missing node);
every function those nodes call or name in an attr, and every function the
object graph's concrete functions name, with the functions they call.
Variables are never dropped here: the saver's restore op reaches them all,
so optimizer slots and other checkpoint entries stay (see the closing note
of issue 16).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import UnsupportedModel
from smsurgery.edits import objectgraph
from smsurgery.edits.changes import Change, EditReport

VARIABLE_PROTO = "tensorflow/core/framework/variable.proto"


def _node_name(reference: str) -> str:
    return reference.lstrip("^").split(":")[0]


def _collection_nodes(meta: Any) -> Iterator[str]:
    variable_def = protos.message_class(VARIABLE_PROTO, "tensorflow.VariableDef")
    for key, collection in meta.collection_def.items():
        kind = collection.WhichOneof("kind")
        if kind == "node_list":
            yield from (_node_name(value) for value in collection.node_list.value)
        elif kind == "bytes_list":
            for value in collection.bytes_list.value:
                definition = variable_def()
                try:
                    definition.ParseFromString(value)
                except Exception as error:
                    raise UnsupportedModel(f"collection '{key}' holds something prune cannot read") from error
                for name in (definition.variable_name, definition.initializer_name, definition.snapshot_name,
                             definition.initial_value_name):  # fmt: skip
                    if name:
                        yield _node_name(name)


def _roots(meta: Any) -> set[str]:
    roots = {_node_name(name) for s in meta.signature_def.values() for name in objectgraph.signature_tensor_names(s)}
    saver = meta.saver_def
    roots |= {_node_name(n) for n in (saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name) if n}
    roots |= set(_collection_nodes(meta))
    return roots


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


def _reached_nodes(meta: Any) -> set[str]:
    by_name = {node.name: node for node in meta.graph_def.node}
    reached, todo = set(), [r for r in _roots(meta) if r in by_name]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(n for n in map(_node_name, by_name[name].input) if n in by_name and n not in reached)
    return reached


def _reached_functions(meta: Any, nodes: Iterable[Any]) -> set[str]:
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    todo = [name for node in nodes for name in _functions_named(node)]
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


def unreached(meta: Any) -> tuple[list[str], list[str]]:
    """(main-graph nodes, library functions) that nothing the loaders need reaches."""
    nodes = _reached_nodes(meta)
    kept = [node for node in meta.graph_def.node if node.name in nodes]
    functions = _reached_functions(meta, kept)
    library = meta.graph_def.library.function
    kept_ops = {node.op for node in kept}
    functions |= {f.signature.name for f in library if f.signature.name in kept_ops}  # functions called as ops
    dropped_nodes = [node.name for node in meta.graph_def.node if node.name not in nodes]
    dropped_functions = [f.signature.name for f in library if f.signature.name not in functions]
    return dropped_nodes, dropped_functions


def prune(meta: Any) -> EditReport:
    """Remove the nodes and functions of `unreached(meta)`; a warning when there are none."""
    nodes, functions = unreached(meta)
    if not nodes and not functions:
        return EditReport(warnings=["nothing to prune: every node and function is reached"])
    before = meta.ByteSize()
    drop_nodes, drop_functions = set(nodes), set(functions)
    kept_nodes = [n for n in meta.graph_def.node if n.name not in drop_nodes]
    del meta.graph_def.node[:]
    meta.graph_def.node.extend(kept_nodes)
    library = meta.graph_def.library
    kept_functions = [f for f in library.function if f.signature.name not in drop_functions]
    del library.function[:]
    library.function.extend(kept_functions)
    kept_gradients = [g for g in library.gradient if g.function_name not in drop_functions]
    del library.gradient[:]
    library.gradient.extend(kept_gradients)
    shown = ", ".join((nodes + functions)[:5]) + (" ..." if len(nodes) + len(functions) > 5 else "")
    detail = f"pruned {len(nodes)} nodes and {len(functions)} functions nothing reaches ({shown}); "
    detail += f"meta graph {before} -> {meta.ByteSize()} bytes"
    return EditReport([Change("prune", "", old=f"{len(nodes)} nodes, {len(functions)} functions", detail=detail)])
