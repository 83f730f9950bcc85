"""Which object-graph nodes of a TF2 export prune drops, and the renumbering that follows (pure protos).

A TF2 export describes its Python objects twice: the `SavedObjectGraph` of
the meta graph (what `tf.saved_model.load` rebuilds) and the
`TrackableObjectGraph` stored in the checkpoint under
`_CHECKPOINTABLE_OBJECT_GRAPH` (what it restores; each variable's node names
its checkpoint key). The second has only the objects with checkpoint values
and those leading to them, so ids differ: the two are matched from the root
by child and slot names (`correspondence`). A copy of the trackable graph
is also a main-graph `Const` the TF1 saver writes back on save.

A variable no concrete function captures (no `bound_inputs` entry) is read
by no signature and no function of the object: optimizer slots and
iterations, EMA copies, unused `tf.Variable`s. It goes, and so does every
`user_object` whose part of the object tree (the breadth-first tree
TensorFlow names checkpoint keys by) holds such a variable and nothing that
stays (the optimizer object, its `_variables` list). Every other node stays.
Node ids are positions, so the kept nodes are renumbered and every id
rewritten: `children`, `dependencies`, `slot_variables`, `saveable_objects`,
the concrete functions' `bound_inputs`, and the same in the trackable graph.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import UnsupportedModel

TRACKABLE_PROTO = "tensorflow/core/protobuf/trackable_object_graph.proto"
TRACKABLE_CLASS = "tensorflow.TrackableObjectGraph"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclass(frozen=True)
class ObjectPlan:
    """The old ids of the nodes that stay (in order), and of the variables that go."""

    keep: tuple[int, ...]
    dropped_variables: tuple[int, ...]

    def remap(self) -> dict[int, int]:
        return {old: new for new, old in enumerate(self.keep)}


def _bound(graph: Any) -> set[int]:
    return {i for function in graph.concrete_functions.values() for i in function.bound_inputs}


def _tree_children(nodes: Any) -> dict[int, list[int]]:
    """Each node's children in the breadth-first tree from the root (first path found)."""
    tree: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    seen, todo = {0}, deque([0])
    while todo:
        current = todo.popleft()
        for child in nodes[current].children:
            if child.node_id not in seen and 0 <= child.node_id < len(nodes):
                seen.add(child.node_id)
                tree[current].append(child.node_id)
                todo.append(child.node_id)
    return tree


def _subtree(tree: dict[int, list[int]], top: int) -> set[int]:
    result, todo = set(), [top]
    while todo:
        current = todo.pop()
        result.add(current)
        todo.extend(tree[current])
    return result


def plan(meta: Any) -> ObjectPlan | None:
    """What goes from the object graph of `meta`; None when every variable is captured by a function."""
    graph = meta.object_graph_def
    nodes = graph.nodes
    bound = _bound(graph)
    dropped_variables = {i for i, n in enumerate(nodes) if n.WhichOneof("kind") == "variable" and i not in bound}
    if not dropped_variables:
        return None
    anchors = {0} | {
        i for i, n in enumerate(nodes) if n.WhichOneof("kind") != "user_object" and i not in dropped_variables
    }
    tree = _tree_children(nodes)
    dropped = set(dropped_variables)
    for i, node in enumerate(nodes):
        if i == 0 or node.WhichOneof("kind") != "user_object" or i in dropped:
            continue
        below = _subtree(tree, i)
        if not below & anchors and below & dropped_variables:
            dropped |= below
    keep = tuple(i for i in range(len(nodes)) if i not in dropped)
    return ObjectPlan(keep, tuple(sorted(dropped_variables)))


def _keep_references(repeated: Any, remap: dict[int, int], *fields: str) -> None:
    """Keep the entries of `repeated` whose id `fields` all stay, with the new ids."""
    kept = []
    for entry in repeated:
        if all(getattr(entry, f) in remap for f in fields):
            copy = type(entry)()
            copy.CopyFrom(entry)
            for f in fields:
                setattr(copy, f, remap[getattr(entry, f)])
            kept.append(copy)
    del repeated[:]
    repeated.extend(kept)


def _renumber_node(node: Any, remap: dict[int, int]) -> None:
    _keep_references(node.children, remap, "node_id")
    _keep_references(node.slot_variables, remap, "original_variable_node_id", "slot_variable_node_id")
    if hasattr(node, "dependencies"):
        _keep_references(node.dependencies, remap, "node_id")
    for saveable in getattr(node, "saveable_objects", {}).values():
        saveable.save_function = remap.get(saveable.save_function, saveable.save_function)
        saveable.restore_function = remap.get(saveable.restore_function, saveable.restore_function)


def _keep_nodes(nodes: Any, chosen: ObjectPlan) -> None:
    remap = chosen.remap()
    kept = [nodes[old] for old in chosen.keep]
    copies = []
    for node in kept:
        copy = type(node)()
        copy.CopyFrom(node)
        _renumber_node(copy, remap)
        copies.append(copy)
    del nodes[:]
    nodes.extend(copies)


def prune_saved_objects(meta: Any, chosen: ObjectPlan) -> None:
    """Drop the plan's nodes from `meta.object_graph_def` and rewrite every id."""
    graph = meta.object_graph_def
    remap = chosen.remap()
    for function in graph.concrete_functions.values():
        bound = list(function.bound_inputs)
        del function.bound_inputs[:]
        function.bound_inputs.extend(remap[i] for i in bound)
    _keep_nodes(graph.nodes, chosen)


def trackables(data: bytes) -> Any:
    """Parse a serialized TrackableObjectGraph (the checkpoint's `_CHECKPOINTABLE_OBJECT_GRAPH`)."""
    graph = protos.message_class(TRACKABLE_PROTO, TRACKABLE_CLASS)()
    try:
        graph.ParseFromString(data)
    except Exception as error:
        raise UnsupportedModel(f"{OBJECT_GRAPH_KEY} is not a TrackableObjectGraph prune can read") from error
    return graph


def correspondence(saved: Any, trackable: Any) -> dict[int, int]:
    """Object-graph id -> trackable-graph id, matched from the roots by child names and slot names.

    The trackable graph holds only what has checkpoint values or leads to
    them (no functions), so its ids differ; `tf.saved_model.load` matches the
    two the same way.
    """
    result, todo = {0: 0}, deque([(0, 0)])
    while todo:
        ours, theirs = todo.popleft()
        named = {child.local_name: child.node_id for child in trackable.nodes[theirs].children}
        pairs = [(c.node_id, named.get(c.local_name)) for c in saved.nodes[ours].children]
        slots = {(s.original_variable_node_id, s.slot_name): s.slot_variable_node_id
                 for s in trackable.nodes[theirs].slot_variables}  # fmt: skip
        for slot in saved.nodes[ours].slot_variables:
            original = result.get(slot.original_variable_node_id)
            pairs.append((slot.slot_variable_node_id, slots.get((original, slot.slot_name))))
        for mine, other in pairs:
            if other is not None and mine not in result and 0 <= other < len(trackable.nodes):
                result[mine] = other
                todo.append((mine, other))
    return result


def trackable_plan(saved: Any, trackable: Any, chosen: ObjectPlan) -> ObjectPlan:
    """The same prune for the trackable graph: the counterparts of the dropped nodes, and what only they reach."""
    mapping = correspondence(saved, trackable)
    kept = {mapping[i] for i in chosen.keep if i in mapping}
    dropped = {mapping[i] for i in range(len(saved.nodes)) if i in mapping and mapping[i] not in kept}
    tree = _tree_children(trackable.nodes)
    for top in list(dropped):
        dropped |= _subtree(tree, top) - kept
    variables = tuple(mapping[i] for i in chosen.dropped_variables if i in mapping)
    return ObjectPlan(tuple(i for i in range(len(trackable.nodes)) if i not in dropped), variables)


def checkpoint_keys(trackable: Any, chosen: ObjectPlan) -> list[str]:
    """The checkpoint keys of the trackable nodes the plan drops."""
    keep = set(chosen.keep)
    return [a.checkpoint_key for i, node in enumerate(trackable.nodes) if i not in keep for a in node.attributes]


def prune_trackables(trackable: Any, chosen: ObjectPlan) -> bytes:
    """`trackable` with the plan applied, serialized."""
    _keep_nodes(trackable.nodes, chosen)
    return trackable.SerializeToString()


def with_full_names(data: bytes, source: bytes) -> bytes:
    """`data` with each attribute's `full_name` taken from `source` by checkpoint key.

    The saver's `Const` copy names variables as the traced graph did
    (`Variable_5`), the checkpoint as the Python objects did
    (`adam/iteration`); the pruned checkpoint keeps its own names.
    """
    graph, names = trackables(data), {}
    for node in trackables(source).nodes:
        names.update({a.checkpoint_key: a.full_name for a in node.attributes})
    for node in graph.nodes:
        for attribute in node.attributes:
            attribute.full_name = names.get(attribute.checkpoint_key, attribute.full_name)
    return graph.SerializeToString()
