"""The walk behind `scan`: which nodes of a graph and its functions can run, in one pass.

Ops are filtered first: one pass reads every node's op type, and only nodes
whose type is risky, calls a function, carries a serialized graph, or is
unknown to TensorFlow's registry are looked at again. The main graph's
inputs are walked backwards from every root at once, each node carrying a
bit mask of the roots (signatures, init ops, the saver) that reach it, so a
graph is walked once whatever the number of signatures; the walk is skipped
when no interesting node exists. Functions count whole (TensorFlow runs
every stateful op of a called function) and inherit the masks of their
callers.

What counts as a call, conservatively: a node whose op is a library
function; every function named in a function-valued attribute, in the
attributes of that `NameAttrList` (recursively) and in `list(func)`
attributes; a called function's registered gradient, its own attributes,
its attribute defaults, and every function sharing its `api_implements`
(Grappler may swap one for another). An attribute placeholder
(`f: {placeholder: "inner"}`) in a body names no function itself: its value
is bound at a call site, in the caller node's attributes or in a
`NameAttrList.attr`, which this walk already follows from every reached
caller, transitively; so every function a placeholder can resolve to is
walked, without enumerating bindings (which could grow exponentially).

Serialized graphs (`DatasetFromGraph`'s input) are read from the Const that
feeds them and walked whole, or reported as opaque code when they cannot be.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress, count
from operator import attrgetter
from typing import Any

from smsurgery.core import protos
from smsurgery.core.graphmodel import attr_functions, data_inputs, node_of, parse_input
from smsurgery.core.lean_graph import full_node
from smsurgery.inspect.scan_ops import ATTR_JUDGED, DENYLIST, GRAPH_CARRIERS, TABLE_FROM_FILE
from smsurgery.inspect.scan_registry import FUNC_ATTRS, PLAIN_OPS

RISKY = frozenset({*DENYLIST, *ATTR_JUDGED, *GRAPH_CARRIERS, *TABLE_FROM_FILE})
PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient", "IdentityN"})
MAX_EMBEDDING_DEPTH = 4
OPAQUE = "opaque"  # a carrier whose graph could not be read: reported as the carrier itself

# Where a scanned node sits: (embedded_in, function or None for the graph itself, node name).
# `embedded_in` is "" for the model's own graph, else the path of carrier nodes ("f/ds > g/ds2").
Key = tuple[str, str | None, str]


def node_callees(node: Any, functions: dict[str, Any]) -> list[tuple[str, str]]:
    """(attribute, function) of every function a node can make TensorFlow run."""
    op = node.op
    found: list[tuple[str, str]] = []
    if op in functions:
        found.append(("op", op))
        names: Iterable[str] = node.attr.keys()  # every attr of the call binds one of the callee's
    elif op in FUNC_ATTRS:
        names = [name for name in FUNC_ATTRS[op] if name in node.attr]
    elif op in PLAIN_OPS:
        return found
    else:
        names = node.attr.keys()  # an op TensorFlow's registry does not know: check every attr
    for name in list(names):
        found.extend(attr_functions(node.attr[name], name))
    return [(attr, callee) for attr, callee in found if callee in functions]


def is_wanted(op: str, functions: dict[str, Any]) -> bool:
    """Whether nodes of this op type are worth a second look: risky, calling, carrying graphs, or unknown."""
    return op in RISKY or op in functions or op not in PLAIN_OPS


def wanted_ops(op_types: Iterable[str], functions: dict[str, Any]) -> set[str]:
    return {op for op in op_types if is_wanted(op, functions)}


@dataclass
class FunctionInfo:
    """What one library function holds that matters: its interesting nodes and its callees."""

    nodes: list[Any]
    callees: list[str]
    by_name: dict[str, Any] | None = None


@dataclass
class Hit:
    """A risky node (or an unreadable graph carrier) and the roots that reach it."""

    key: Key
    node: Any
    mask: int
    graph: ScanGraph
    opaque: bool = False


@dataclass
class ScanGraph:
    """One GraphDef (the model's, or one embedded in a tensor) and its function library.

    `graph_def` may be a LeanGraph (core/lean_graph.py) or a SplitGraph
    (core/lean_spans.py): the walk reads only names, ops and inputs; nodes
    whose attributes matter are made whole (`full_node`).
    """

    graph_def: Any
    embedded_in: str = ""
    depth: int = 0
    outer: ScanGraph | None = None  # the graph whose node reads this one: its functions are callable too
    # Carrier key -> the hits of its embedded graph (None while being expanded), shared by every level.
    expanded: dict[Key, list[Hit] | None] = field(default_factory=dict, init=False)
    functions: dict[str, Any] = field(init=False)
    _index: dict[str, int] | None = field(default=None, init=False)
    _infos: dict[str, FunctionInfo] = field(default_factory=dict, init=False)
    _apis: dict[bytes, list[str]] | None = field(default=None, init=False)
    callers: dict[str, list[tuple[str | None, Any, str]]] = field(default_factory=dict, init=False)
    interesting: list[tuple[int, Any]] = field(default_factory=list, init=False)  # (position, node)
    _nodes: list[Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        library = self.graph_def.library
        # The embedded graph runs with the caller's function library as well as its own: walk both.
        self.functions = {
            **(self.outer.functions if self.outer else {}),
            **{f.signature.name: f for f in library.function},
        }
        if self.outer is not None:
            self.expanded = self.outer.expanded
        own = {f.signature.name: self.embedded_in for f in library.function}
        self.home = {**(self.outer.home if self.outer else {}), **own}  # function -> embedded_in of its graph
        self.gradients = {
            **(self.outer.gradients if self.outer else {}),
            **{g.function_name: g.gradient_func for g in library.gradient},
        }
        # The op census first, by C loops (no Python code per node); the positions of interesting nodes
        # only when there is one: a graph without interesting ops is never walked, nor listed.
        node_field = self.graph_def.node
        wanted = wanted_ops(set(map(attrgetter("op"), node_field)), self.functions)
        if wanted:
            positions = compress(count(), map(wanted.__contains__, map(attrgetter("op"), node_field)))
            # A lean graph's nodes are made whole (attributes parsed) only here, for the few that matter.
            self.interesting = [(position, full_node(self.nodes[position])) for position in positions]
        for _position, node in self.interesting:
            for attr, callee in node_callees(node, self.functions):
                self.callers.setdefault(callee, []).append((None, node, attr))

    @property
    def nodes(self) -> list[Any]:
        """The graph's nodes as a list (indexing it is cheaper than the proto's), built on first use."""
        if self._nodes is None:
            self._nodes = list(self.graph_def.node)
        return self._nodes

    @property
    def index(self) -> dict[str, int]:
        """Node name -> position, built once and only when a walk or lookup needs it."""
        if self._index is None:
            self._index = dict(zip([node.name for node in self.nodes], range(len(self.nodes)), strict=True))
        return self._index

    def main_node(self, name: str) -> Any | None:
        """The graph's node of this name, whole (with its attributes), or None."""
        position = self.index.get(name)
        return None if position is None else full_node(self.nodes[position])

    def function_node(self, function: str, name: str) -> Any | None:
        info = self.info(function)
        if info.by_name is None:
            info.by_name = {node.name: node for node in self.functions[function].node_def}
        node = info.by_name.get(name)
        return None if node is None else full_node(node)

    def info(self, function: str) -> FunctionInfo:
        """The interesting nodes and callees of a function, computed once."""
        if function in self._infos:
            return self._infos[function]
        fdef = self.functions[function]
        body = fdef.node_def
        wanted = wanted_ops(set(map(attrgetter("op"), body)), self.functions)
        nodes = [full_node(node) for node in body if node.op in wanted] if wanted else []
        callees: list[str] = []
        for node in nodes:
            for attr, callee in node_callees(node, self.functions):
                callees.append(callee)
                self.callers.setdefault(callee, []).append((function, node, attr))
        callees += [callee for _attr, callee in self._function_refs(fdef)]
        info = FunctionInfo(nodes, callees)
        self._infos[function] = info
        return info

    def _function_refs(self, fdef: Any) -> Iterator[tuple[str, str]]:
        """Functions a function brings along: gradient, own attrs, attr defaults, same api_implements."""
        name = fdef.signature.name
        if self.gradients.get(name) in self.functions:
            yield "gradient", self.gradients[name]
        for key, value in fdef.attr.items():
            yield from ((a, f) for a, f in attr_functions(value, key) if f in self.functions)
        for attr_def in fdef.signature.attr:
            yield from ((a, f) for a, f in attr_functions(attr_def.default_value, attr_def.name) if f in self.functions)
        api = fdef.attr["api_implements"].s if "api_implements" in fdef.attr else b""
        if api:  # Grappler swaps implementations within one library
            same = [other for other in self.implementations()[api] if self.home[other] == self.home[name]]
            yield from (("api_implements", other) for other in same if other != name)

    def implementations(self) -> dict[bytes, list[str]]:
        """`api_implements` value -> the functions declaring it, computed once."""
        if self._apis is None:
            self._apis = {}
            for name, fdef in self.functions.items():
                if "api_implements" in fdef.attr and fdef.attr["api_implements"].s:
                    self._apis.setdefault(fdef.attr["api_implements"].s, []).append(name)
        return self._apis

    def masks(self, roots: list[list[str]]) -> dict[int, int]:
        """Position -> bit mask of the root lists (bit i: roots[i]) that reach each interesting node."""
        if not self.interesting:
            return {}
        index, nodes = self.index, self.nodes
        get = index.get
        reached = [0] * len(nodes)
        stack: list[tuple[int, int]] = []
        for bit, names in enumerate(roots):
            stack += [(index[n], 1 << bit) for n in (node_of(r) for r in names if r) if n in index]
        pop, push = stack.pop, stack.append
        while stack:
            position, bits = pop()
            old = reached[position]
            new = bits & ~old
            if not new:
                continue
            reached[position] = old | new
            for tensor in nodes[position].input:
                found = get(tensor)
                if found is None:
                    found = get(node_of(tensor))
                if found is not None:
                    push((found, new))
        return {i: reached[i] for i, _node in self.interesting}

    def function_masks(self, seeds: Iterable[tuple[str, int]]) -> dict[str, int]:
        """Function -> OR of the masks of every reached caller, transitively."""
        result: dict[str, int] = {}
        stack = [(f, m) for f, m in seeds if m]
        while stack:
            function, bits = stack.pop()
            if function not in self.functions:
                continue
            old = result.get(function, 0)
            new = bits & ~old
            if not new:
                continue
            result[function] = old | new
            stack += [(callee, new) for callee in self.info(function).callees]
        return result

    def hits(self, roots: list[list[str]], extra_functions: Iterable[str] = (), unreached: int = 0) -> list[Hit]:
        """Every risky node with the mask of the roots reaching it.

        Main-graph nodes no root reaches, and `extra_functions`, get the bit
        `unreached` (0: not reported at all).
        """
        node_masks = self.masks(roots)
        found: list[Hit] = []
        seeds: list[tuple[str, int]] = [(f, unreached) for f in extra_functions]
        for position, node in self.interesting:
            mask = node_masks.get(position, 0) or unreached
            seeds += [(callee, mask) for _attr, callee in node_callees(node, self.functions)]
            found += self._node_hits(None, node, mask)
        for function, mask in sorted(self.function_masks(seeds).items()):
            for node in self.info(function).nodes:
                found += self._node_hits(function, node, mask)
        return found

    def _node_hits(self, function: str | None, node: Any, mask: int) -> list[Hit]:
        if not mask or node.op not in RISKY:
            return []
        key: Key = (self.embedded_in if function is None else self.home[function], function, node.name)
        if node.op not in GRAPH_CARRIERS:
            return [Hit(key, node, mask, self)]
        if key not in self.expanded:
            self.expanded[key] = None  # a graph that reaches its own carrier again adds nothing new
            inner = self.embedded_graph(function, node, key[0])
            if inner is None:
                self.expanded[key] = [Hit(key, node, 0, self, opaque=True)]
            else:
                everything = [[node.name for node in inner.graph_def.node]]
                own = [f.signature.name for f in inner.graph_def.library.function]  # outer ones only if called
                self.expanded[key] = inner.hits(everything, own, 1)
        return [Hit(h.key, h.node, mask, h.graph, h.opaque) for h in self.expanded[key] or []]

    def embedded_graph(self, function: str | None, carrier: Any, home: str) -> ScanGraph | None:
        """The GraphDef a carrier node reads from a Const, or None when it cannot be read."""
        if self.depth >= MAX_EMBEDDING_DEPTH:
            return None
        position = GRAPH_CARRIERS[carrier.op]
        inputs = data_inputs(carrier)
        producer = None
        tensor = inputs[position] if position < len(inputs) else None
        for _ in range(64):  # follow Identity-like nodes to the Const
            if tensor is None:
                return None
            name = node_of(tensor)
            producer = self.main_node(name) if function is None else self.function_node(function, name)
            if producer is None or producer.op not in PASS_THROUGH:
                break
            inputs = data_inputs(producer)
            read = parse_input(tensor, in_function=function is not None, lenient=True)
            output = read.index if producer.op == "IdentityN" else 0
            tensor = inputs[output] if output < len(inputs) else None
        if producer is None or producer.op != "Const" or len(producer.attr["value"].tensor.string_val) != 1:
            return None
        try:
            graph_def = protos.graph_def_class().FromString(producer.attr["value"].tensor.string_val[0])
        except Exception:  # any parse failure means: cannot be read
            return None
        where = f"{function}/{carrier.name}" if function else carrier.name
        path = f"{home} > {where}" if home else where
        return ScanGraph(graph_def, embedded_in=path, depth=self.depth + 1, outer=self)
