"""One pure model of a meta graph: the main graph and every function of its library.

TF2 and Keras exports keep almost nothing in the main graph: placeholders,
variable handles and a few call nodes; every layer lives in a FunctionDef
(`__inference_signature_wrapper_...` -> `__inference___call___...` ->
`model_1/pool_1/Mean`). Finding, listing or rewiring a tensor therefore
needs the same view of both: nodes by name in each *scope* (the main graph,
or one function), who consumes each node, which functions a node calls
(call ops, any function-valued attr: If/While/Case branches, `f` of
`PartitionedCall`, attr placeholders resolved at the call site) and who
calls a function. Indices are built lazily, the first time a scope is
asked for, so reading one signature of a 2,000-function export touches only
the functions it reaches.

Tensor names follow two rules, and `parse_input` is the one parser for both:
`node:index` (or `node`, `^node`) in a GraphDef; `node:arg:index`, an input
argument's bare name, or `^node` inside a FunctionDef. An *address* names a
tensor anywhere: `node:index` in the main graph, `FUNCTION::node:arg:index`
(or `FUNCTION::arg`) in a function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from smsurgery.core import node_outputs as node_types
from smsurgery.core.errors import InvalidName
from smsurgery.core.names import node_of as node_of  # re-exported; `names` holds it for light readers

MAIN = ""  # the scope name of the main graph
SCOPE_SEPARATOR = "::"
CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
LOOP_OPS = ("While", "StatelessWhile", "_While")
BRANCH_OPS = ("If", "StatelessIf", "Case", "StatelessCase", "_If")
_FUNCTION_INPUT = re.compile(r"^(?P<node>[^:^\s][^:\s]*)(?::(?P<arg>[A-Za-z_][A-Za-z0-9_]*):(?P<index>\d+))?$")
_GRAPH_INPUT = re.compile(r"^(?P<node>[^:^\s][^:\s]*)(?::(?P<index>\d+))?$")

# Output argument names of common ops (there is no op registry without the TF runtime).
_OUTPUT_ARG = {
    "Relu": "activations", "Relu6": "activations", "Elu": "activations", "Selu": "activations",
    "LeakyRelu": "activations", "Softplus": "activations", "Softsign": "activations",
    "MatMul": "product", "BatchMatMulV2": "output", "BatchMatMulV3": "output", "Softmax": "softmax",
    "LogSoftmax": "logsoftmax", "ReadVariableOp": "value", "Tanh": "y", "Sigmoid": "y", "Exp": "y",
    "Log": "y", "Sqrt": "y", "Rsqrt": "y", "Square": "y", "Neg": "y", "Abs": "y", "Reciprocal": "y",
    "Add": "z", "AddV2": "z", "Sub": "z", "Mul": "z", "RealDiv": "z", "Maximum": "z", "Minimum": "z",
    "Pow": "z", "SquaredDifference": "z", "FloorDiv": "z", "DivNoNan": "z", "Equal": "z", "Less": "z",
    "Greater": "z", "RestoreV2": "tensors", "ShardedFilename": "filename", "Erf": "y", "Floor": "y",
}  # fmt: skip
_MULTI_OUTPUT_ARGS = {
    "FusedBatchNormV3": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2",
                         "reserve_space_3"),
    "FusedBatchNorm": ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2"),
}  # fmt: skip


@dataclass(frozen=True)
class Input:
    """One entry of a node's `input` list, parsed."""

    node: str
    index: int = 0
    arg: str | None = None  # output argument name (FunctionDef form); None in graphs or for function inputs
    control: bool = False


def parse_input(text: str, *, in_function: bool, lenient: bool = False) -> Input:
    """`a:1`, `^a` (graph) or `a:output:1`, `x`, `^a` (function) -> Input; anything else is InvalidName.

    `lenient` reads any other text as its node (`node_of`) and the digits
    after its last colon, for readers of graphs they did not write.
    """
    text = text.strip()
    if text.startswith("^"):
        return Input(text[1:], control=True)
    match = (_FUNCTION_INPUT if in_function else _GRAPH_INPUT).match(text)
    if not match:
        if lenient:
            last = text.rsplit(":", 1)[-1] if ":" in text else "0"
            return Input(node_of(text), int(last) if last.isdigit() else 0)
        form = "NODE:ARG:INDEX or an argument name" if in_function else "NODE or NODE:INDEX"
        raise InvalidName(f"'{text}' is not a tensor name", hint=f"expected {form}")
    index = int(match["index"] or 0)
    return Input(match["node"], index, match.groupdict().get("arg"))


def data_inputs(node: Any) -> list[str]:
    """A node's input entries without its control inputs (`^a`), in order: what its input positions count."""
    return [i for i in node.input if not i.startswith("^")]


def attr_functions(value: Any, label: str) -> Iterator[tuple[str, str]]:
    """(label, function) for every function an AttrValue names: `func`, `list(func)`, and recursively
    every function in those NameAttrLists' own attrs (`f.attr.g` binds `g` of the function `f` calls)."""
    kind = value.WhichOneof("value")
    funcs = [value.func] if kind == "func" else list(value.list.func) if kind == "list" else []
    for func in funcs:
        if func.name:
            yield label, func.name
        for key, inner in func.attr.items():
            yield from attr_functions(inner, f"{label}.attr.{key}")


@dataclass(frozen=True)
class TensorRef:
    """A tensor anywhere in the meta graph: scope ("" = main graph), node or function argument, output."""

    scope: str
    node: str
    index: int = 0
    arg: str | None = None  # output arg name in functions; None for main-graph tensors and function inputs
    is_argument: bool = False  # a function's input argument

    @property
    def local_name(self) -> str:
        """The name as the scope itself writes it (ret values, node inputs)."""
        if not self.scope:
            return f"{self.node}:{self.index}"
        if self.is_argument:
            return self.node
        return f"{self.node}:{self.arg}:{self.index}"

    @property
    def address(self) -> str:
        return self.local_name if not self.scope else f"{self.scope}{SCOPE_SEPARATOR}{self.local_name}"


def parse_address(text: str) -> tuple[str, str]:
    """`F::node:arg:0` -> ("F", "node:arg:0"); `node:0` -> ("", "node:0")."""
    scope, separator, rest = text.strip().partition(SCOPE_SEPARATOR)
    return (scope, rest) if separator else (MAIN, text.strip())


@dataclass(frozen=True)
class Call:
    """A node that calls a function: which attr names it, and what kind of call it is."""

    scope: str
    node: str
    function: str
    attr: str
    kind: str  # call | loop | branch | other


@dataclass
class Scope:
    """The main graph or one function body, indexed by node name."""

    name: str
    nodes: dict[str, Any]
    function_def: Any = None
    args: dict[str, Any] = field(default_factory=dict)  # input arg name -> ArgDef (functions)
    arg_positions: dict[str, int] = field(default_factory=dict)
    lenient: bool = False  # read odd input names as their node (readers), not as an error (edits)
    _consumers: dict[str, list[tuple[str, int]]] | None = None
    _inputs: dict[str, list[Input]] = field(default_factory=dict)

    @property
    def in_function(self) -> bool:
        return bool(self.name)

    def inputs(self, node: str) -> list[Input]:
        if node not in self._inputs:
            self._inputs[node] = [
                parse_input(t, in_function=self.in_function, lenient=self.lenient) for t in self.nodes[node].input
            ]
        return self._inputs[node]

    def consumers(self, node: str) -> list[tuple[str, int]]:
        """(consumer node, input position) for every node that reads `node` (data or control)."""
        if self._consumers is None:
            found: dict[str, list[tuple[str, int]]] = {}
            for name in self.nodes:
                for position, item in enumerate(self.inputs(name)):
                    found.setdefault(item.node, []).append((name, position))
            self._consumers = found
        return self._consumers.get(node, [])

    def returned(self) -> dict[str, Input]:
        """Output arg name -> the tensor it returns (functions only)."""
        if self.function_def is None:
            return {}
        return {k: parse_input(v, in_function=True) for k, v in self.function_def.ret.items()}

    def output_refs(self, node: str) -> list[TensorRef]:
        """Every output of `node` that this scope can name; see `_output_names`."""
        return [TensorRef(self.name, node, index, arg) for arg, index in _output_names(self, node)]


def _output_names(scope: Scope, name: str) -> list[tuple[str | None, int]]:
    """(arg, index) pairs of a node's outputs, from `_output_shapes`, its consumers and a table of ops.

    Without an op registry the output argument names of a function's node
    are known from how the function refers to them (consumers, rets), and
    for common ops from a small table; a node nobody reads and that the
    table lacks is listed under `output`, the name most ops use.
    """
    node = scope.nodes[name]
    count = node_types.output_count(node)
    if not scope.in_function:
        return [(None, i) for i in range(count if count is not None else 1)]
    if node.op in _MULTI_OUTPUT_ARGS:
        names = _MULTI_OUTPUT_ARGS[node.op]
        return [(arg, 0) for arg in names[: count if count is not None else len(names)]]
    seen = {(i.arg, i.index) for c, _ in scope.consumers(name) for i in scope.inputs(c) if i.node == name}
    seen |= {(i.arg, i.index) for i in scope.returned().values() if i.node == name}
    seen.discard((None, 0))
    args = {arg for arg, _ in seen if arg}
    arg = next(iter(args)) if len(args) == 1 else _OUTPUT_ARG.get(node.op, "output")
    if len(args) > 1:
        return sorted(seen, key=lambda item: (str(item[0]), item[1]))  # type: ignore[arg-type]
    total = count if count is not None else max([i + 1 for _, i in seen] or [1])
    return [(arg, i) for i in range(total)]


class GraphModel:
    """The scopes of one MetaGraphDef, their calls and callers; built lazily, read-only.

    Edits build it strict (an input name that is neither `node:index` nor
    `node:arg:index` is an error); readers pass `lenient=True`, so that a
    report on a graph nobody here wrote never stops at an odd name.
    """

    @classmethod
    def of_graph(cls, graph_def: Any, *, lenient: bool = False) -> GraphModel:
        """The model of a bare GraphDef (one TensorFlow made in memory, or a frozen graph)."""
        return cls(_GraphOnly(graph_def), lenient=lenient)

    def __init__(self, meta: Any, *, lenient: bool = False) -> None:
        self.meta = meta
        self.lenient = lenient
        self._scopes: dict[str, Scope] = {}
        self._function_defs: dict[str, Any] | None = None
        self._callers: dict[str, list[Call]] | None = None

    # ------------------------------------------------------------ scopes

    @property
    def function_defs(self) -> dict[str, Any]:
        if self._function_defs is None:
            self._function_defs = {f.signature.name: f for f in self.meta.graph_def.library.function}
        return self._function_defs

    @property
    def main(self) -> Scope:
        return self.scope(MAIN)

    def scope(self, name: str) -> Scope:
        """The main graph (`""`) or function `name`; KeyError if the library has no such function."""
        if name not in self._scopes:
            if name == MAIN:
                self._scopes[name] = Scope(MAIN, {n.name: n for n in self.meta.graph_def.node}, lenient=self.lenient)
            else:
                fdef = self.function_defs[name]
                args = {a.name: a for a in fdef.signature.input_arg}
                positions = {a.name: i for i, a in enumerate(fdef.signature.input_arg)}
                nodes = {n.name: n for n in fdef.node_def}
                self._scopes[name] = Scope(name, nodes, fdef, args, positions, lenient=self.lenient)
        return self._scopes[name]

    # ------------------------------------------------------------ calls

    def calls(self, scope: str, node: str, bindings: dict[str, str] | None = None) -> list[Call]:
        """Functions that `node` of `scope` calls; attr placeholders resolved through `bindings`.

        A function named inside a NameAttrList's own attrs (`f.attr.g`) counts
        too: TensorFlow runs it when it runs `f`, and scan has always followed it.
        """
        item = self.scope(scope).nodes[node]
        found = []
        for attr, value in sorted(item.attr.items()):
            named = list(attr_functions(value, attr))
            if value.WhichOneof("value") == "placeholder" and bindings and value.placeholder in bindings:
                named = [(attr, bindings[value.placeholder])]
            found += [Call(scope, node, f, label, _call_kind(item.op)) for label, f in named if f in self.function_defs]
        return found

    def callees(self, scope: str) -> list[Call]:
        return [c for name in self.scope(scope).nodes for c in self.calls(scope, name)]

    def callers(self, function: str) -> list[Call]:
        """Every node, in the main graph or any function, that names `function`."""
        if self._callers is None:
            found: dict[str, list[Call]] = {}
            for scope in [MAIN, *self.function_defs]:
                for call in self.callees(scope):
                    found.setdefault(call.function, []).append(call)
            self._callers = found
        return self._callers.get(function, [])

    def reachable(self, roots: Iterable[Call]) -> dict[str, list[Call]]:
        """Function name -> the calls through which it is reached from `roots` (breadth first)."""
        reached: dict[str, list[Call]] = {}
        queue = list(roots)
        while queue:
            call = queue.pop(0)
            first = call.function not in reached
            reached.setdefault(call.function, []).append(call)
            if first:
                queue.extend(self.callees(call.function))
        return reached

    def call_path(self, root: str, target: str) -> list[Call] | None:
        """The calls from function `root` down to function `target` through plain call ops (shortest)."""
        if root == target:
            return []
        parents: dict[str, Call] = {}
        queue, seen = [root], {root}
        while queue:
            current = queue.pop(0)
            for call in self.callees(current):
                if call.kind != "call" or call.function in seen:
                    continue
                parents[call.function] = call
                if call.function == target:
                    path = [call]
                    while path[0].scope != root:
                        path.insert(0, parents[path[0].scope])
                    return path
                seen.add(call.function)
                queue.append(call.function)
        return None

    # ------------------------------------------------------------ walks

    def upstream(self, scope: str, nodes: Iterable[str], *, stop: Iterable[str] = ()) -> set[str]:
        """Nodes of `scope` that `nodes` depend on (data and control), `nodes` included; `stop` not crossed."""
        index, stops = self.scope(scope), set(stop)
        seen: set[str] = set()
        stack = [n for n in nodes if n in index.nodes]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in stops:
                continue
            stack.extend(i.node for i in index.inputs(name) if i.node in index.nodes and i.node not in seen)
        return seen

    def downstream(self, scope: str, nodes: Iterable[str], *, stop: Iterable[str] = ()) -> set[str]:
        """Nodes of `scope` that depend on `nodes`, `nodes` included; `stop` not crossed."""
        index, stops = self.scope(scope), set(stop)
        seen: set[str] = set()
        stack = list(nodes)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name not in stops:
                stack.extend(c for c, _ in index.consumers(name) if c not in seen)
        return seen

    def tensor_consumers(self, scope: str, node: str, index: int) -> list[str]:
        """Nodes of `scope` that read output `index` of `node` as data (not as a control input)."""
        local = self.scope(scope)
        found = []
        for consumer, position in local.consumers(node):
            item = local.inputs(consumer)[position]
            if not item.control and item.index == index:
                found.append(consumer)
        return found

    # ------------------------------------------------------------ tensors

    def dtype(self, ref: TensorRef) -> int | None:
        """DataType number of a tensor where the protos say it; None when not knowable here."""
        scope = self.scope(ref.scope)
        if ref.is_argument:
            return int(scope.args[ref.node].type) or None
        node = scope.nodes[ref.node]
        if node.op in _MULTI_OUTPUT_ARGS:
            return _attr_type(node, "T") if ref.arg == "y" else _attr_type(node, "U")
        dtypes = node_types.output_dtypes(node)
        return dtypes[ref.index] if dtypes is not None and ref.index < len(dtypes) else None

    def shape(self, ref: TensorRef) -> Any:
        """TensorShapeProto of a tensor (unknown rank when the protos do not say)."""
        scope = self.scope(ref.scope)
        if ref.is_argument:
            position = scope.arg_positions[ref.node]
            attrs = scope.function_def.arg_attr
            shape = node_types.output_shape(_EMPTY_NODE, 0)
            if position in attrs and "_output_shapes" in attrs[position].attr:
                listed = attrs[position].attr["_output_shapes"].list.shape
                if listed:
                    shape.CopyFrom(listed[0])
                    return shape
            return shape
        node = scope.nodes[ref.node]
        return node_types.output_shape(node, self.flat_index(ref))

    def flat_index(self, ref: TensorRef) -> int:
        """Position of `ref` among its node's outputs (what `_output_shapes` and `Tout` count)."""
        node = self.scope(ref.scope).nodes.get(ref.node)
        if node is not None and node.op in _MULTI_OUTPUT_ARGS and ref.arg in _MULTI_OUTPUT_ARGS[node.op]:
            return _MULTI_OUTPUT_ARGS[node.op].index(ref.arg)
        return ref.index

    def refs(self, scope: str) -> Iterator[TensorRef]:
        """Every tensor this scope can name: function arguments first, then node outputs."""
        index = self.scope(scope)
        for name in index.args:
            yield TensorRef(scope, name, is_argument=True)
        for name, node in index.nodes.items():
            if node.op != "NoOp":
                yield from index.output_refs(name)


@dataclass(frozen=True)
class _GraphOnly:
    """Stands for a MetaGraphDef that holds only `graph_def`."""

    graph_def: Any


class _EmptyNode:
    """Stands for a node without attributes: `output_shape` of it is an unknown-rank shape."""

    def __init__(self) -> None:
        self.attr: dict[str, Any] = {}
        self.op = ""


_EMPTY_NODE = _EmptyNode()


def _attr_type(node: Any, name: str) -> int | None:
    if name in node.attr and node.attr[name].WhichOneof("value") == "type":
        return int(node.attr[name].type)
    return None


def _call_kind(op: str) -> str:
    if op in CALL_OPS:
        return "call"
    if op in LOOP_OPS:
        return "loop"
    if op in BRANCH_OPS:
        return "branch"
    return "other"
