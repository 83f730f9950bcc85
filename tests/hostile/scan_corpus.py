"""Scan evasions: every way a graph names code to run, as MetaGraphDefs built from protos.

Issue 11 found models that `scan` called clean although they write files
when served. Each way is a *link*: a call by op name, PartitionedCall, a
func or list(func) attr of an op TensorFlow does not know, a function inside
a NameAttrList's own attrs, attr placeholders bound one or two calls away,
If/While/Case (and stateless forms), a registered gradient, an
`api_implements` sibling, a graph serialized into a Const for
DatasetFromGraph. An *entry* says what runs the chain: a signature (through
data or control inputs), the main op, the saver's restore op, a node nothing
reaches, an object-graph function. `build` puts one risky op at the end of
any chain; `CASES` names one model per class for the corpus test, and the
property test (tests/test_scan_property.py) draws random chains.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core import protos
from smsurgery.inspect.scan import CHECKPOINT_OPS, DENYLIST
from smsurgery.inspect.scan_ops import ATTR_JUDGED, GRAPH_CARRIERS, TABLE_FROM_FILE

LINKS = (
    "call", "partitioned", "stateful_partitioned", "custom_func_attr", "custom_list_attr", "nested_attr",
    "placeholder", "placeholder_transitive", "if", "stateless_if", "while", "stateless_while", "case",
    "stateless_case", "gradient", "api_implements", "embedded", "embedded_identity_n", "embedded_outer_call",
)  # fmt: skip
# Links that put the rest of the chain in a serialized graph.
EMBEDDING = frozenset({"embedded", "embedded_identity_n", "embedded_outer_call"})
# ...of which these keep the rest there (embedded_outer_call calls back into the library around it).
EMBEDDED_HOME = frozenset({"embedded", "embedded_identity_n"})
ENTRIES = ("signature", "signature_control", "main_op", "saver", "unreached", "object_graph")
RISKY = sorted(set(DENYLIST) - ATTR_JUDGED - TABLE_FROM_FILE - CHECKPOINT_OPS - set(GRAPH_CARRIERS))
OPAQUE = ("opaque_placeholder", "opaque_garbage")  # DatasetFromGraph whose graph cannot be read
MAX_LINKS = 4


@dataclass
class Nest:
    """Builds the nest; `names` makes every function and node name unique."""

    meta: Any
    names: itertools.count = field(default_factory=itertools.count)
    embedded: bool = False

    def name(self, stem: str) -> str:
        return f"{stem}_{next(self.names)}"

    def function(self, library: Any, *, decoy: bool = False) -> Any:
        fdef = library.function.add()
        fdef.signature.name = self.name("decoy" if decoy else "fn")
        fdef.node_def.add(name="benign", op="Identity" if decoy else "NoOp")
        return fdef


def _add(ctx: Any, **kwargs: Any) -> Any:
    """A node in a GraphDef (`.node`) or a FunctionDef (`.node_def`)."""
    return (ctx.node if hasattr(ctx, "node") else ctx.node_def).add(**kwargs)


def _place_risky(nest: Nest, ctx: Any, risky: str) -> str:
    if risky in OPAQUE:
        source = _add(ctx, name=nest.name("graph_bytes"), op="Placeholder" if risky == OPAQUE[0] else "Const")
        if risky == OPAQUE[1]:
            source.attr["value"].tensor.string_val.append(b"\x0a\xff\xff not a GraphDef")
        ref = source.name if hasattr(ctx, "node") else f"{source.name}:output:0"
        return _add(ctx, name="risky", op="DatasetFromGraph", input=[ref]).name
    return _add(ctx, name="risky", op=risky).name


def place(nest: Nest, ctx: Any, library: Any, links: list[str], risky: str) -> str:
    """Put the chain in `ctx` (whose library is `library`); returns the name of the node that starts it."""
    if not links:
        return _place_risky(nest, ctx, risky)
    link, rest = links[0], links[1:]
    if link in EMBEDDING:
        inner = protos.graph_def_class()()
        if link == "embedded_outer_call":  # the embedded graph calls a function of the library around it
            target = nest.function(library)
            place(nest, target, library, rest, risky)
            inner.node.add(name=nest.name("outer_call"), op=target.signature.name)
        else:
            place(nest, inner, inner.library, rest, risky)
        const = _add(ctx, name=nest.name("graph_const"), op="Const")
        const.attr["value"].tensor.string_val.append(inner.SerializeToString())
        suffix = "" if hasattr(ctx, "node") else ":output:0"
        ref = f"{const.name}{suffix}"
        if link == "embedded_identity_n":  # output 1 of IdentityN is the hidden graph; input 0 an empty one
            benign = _add(ctx, name=nest.name("benign_graph"), op="Const")
            benign.attr["value"].tensor.string_val.append(b"")
            pick = _add(ctx, name=nest.name("pick"), op="IdentityN", input=[f"{benign.name}{suffix}", ref])
            ref = f"{pick.name}:1" if not suffix else f"{pick.name}:output:1"
        nest.embedded = True
        return _add(ctx, name=nest.name("dataset"), op="DatasetFromGraph", input=[ref]).name
    target = nest.function(library)
    place(nest, target, library, rest, risky)
    decoy = nest.function(library, decoy=True).signature.name
    node = _add(ctx, name=nest.name(link))
    _link(nest, node, link, target, decoy, library)
    return node.name


def _link(nest: Nest, node: Any, link: str, target: Any, decoy: str, library: Any) -> None:
    """Make `node` call `target` the way `link` says."""
    name = target.signature.name
    simple = {"partitioned": ("PartitionedCall", "f"), "stateful_partitioned": ("StatefulPartitionedCall", "f"),
              "custom_func_attr": ("MyCustomOp", "fn"), "if": ("If", "else_branch"),
              "stateless_if": ("StatelessIf", "then_branch"), "while": ("While", "body"),
              "stateless_while": ("StatelessWhile", "cond")}  # fmt: skip
    if link == "call":
        node.op = name
    elif link in simple:
        node.op, attr = simple[link]
        node.attr[attr].func.name = name
        other = {"else_branch": "then_branch", "then_branch": "else_branch", "body": "cond", "cond": "body"}
        if attr in other:
            node.attr[other[attr]].func.name = decoy
    elif link in ("case", "stateless_case", "custom_list_attr"):
        node.op = {"case": "Case", "stateless_case": "StatelessCase", "custom_list_attr": "MyCustomOp"}[link]
        node.attr["branches"].list.func.add(name=decoy)
        node.attr["branches"].list.func.add(name=name)
    elif link == "nested_attr":
        node.op = "PartitionedCall"
        node.attr["f"].func.name = decoy
        node.attr["f"].func.attr["helper"].func.name = name
    elif link == "placeholder":
        forward = nest.function(library)
        forward.signature.attr.add(name="inner", type="func")
        forward.node_def.add(name="call_inner", op="PartitionedCall").attr["f"].placeholder = "inner"
        node.op = "StatefulPartitionedCall"
        node.attr["f"].func.name = forward.signature.name
        node.attr["f"].func.attr["inner"].func.name = name
    elif link == "placeholder_transitive":
        second = nest.function(library)
        second.signature.attr.add(name="g", type="func")
        second.node_def.add(name="call_g", op="PartitionedCall").attr["f"].placeholder = "g"
        first = nest.function(library)
        first.signature.attr.add(name="inner", type="func")
        first.node_def.add(name="pass_on", op=second.signature.name).attr["g"].placeholder = "inner"
        node.op = first.signature.name
        node.attr["inner"].func.name = name
    elif link == "gradient":
        forward = nest.function(library)
        library.gradient.add(function_name=forward.signature.name, gradient_func=name)
        node.op = "SymbolicGradient"
        node.attr["f"].func.name = forward.signature.name
    elif link == "api_implements":
        sibling = nest.function(library)
        for fdef in (sibling, target):
            fdef.attr["api_implements"].s = b"risky_api"
        node.op = "PartitionedCall"
        node.attr["f"].func.name = sibling.signature.name
    else:
        raise AssertionError(link)


def build(entry: str, links: list[str], risky: str, decoys: int) -> tuple[Any, bool]:
    """A MetaGraphDef with the chain behind `entry`; returns it and whether it embeds a graph."""
    meta = protos.meta_graph_class()()
    meta.meta_info_def.tags.append("serve")
    nest = Nest(meta)
    graph = meta.graph_def
    _add(graph, name="x", op="Placeholder")
    clean = _add(graph, name="clean_out", op="Identity", input=["x"])
    meta.signature_def["clean"].outputs["y"].name = f"{clean.name}:0"
    for _ in range(decoys):  # functions and callers that do nothing risky
        decoy = nest.function(graph.library, decoy=True)
        _add(graph, name=nest.name("decoy_call"), op="PartitionedCall", input=["x"]).attr[
            "f"
        ].func.name = decoy.signature.name
    if entry == "object_graph":
        first = nest.function(graph.library)
        place(nest, first, graph.library, links, risky)
        meta.object_graph_def.concrete_functions[first.signature.name].bound_inputs.append(0)
        return meta, nest.embedded
    start = place(nest, graph, graph.library, links, risky)
    if entry in ("signature", "signature_control"):
        ref = start if entry == "signature" else f"^{start}"
        out = _add(graph, name="served", op="Identity", input=["x", ref] if entry == "signature_control" else [ref])
        meta.signature_def["serving_default"].outputs["y"].name = f"{out.name}:0"
    elif entry == "main_op":
        _add(graph, name="main_op", op="NoOp", input=[f"^{start}"])
        meta.collection_def["saved_model_main_op"].node_list.value.append("main_op")
    elif entry == "saver":
        _add(graph, name="save/restore_all", op="NoOp", input=[f"^{start}"])
        meta.saver_def.restore_op_name = "save/restore_all"
    return meta, nest.embedded


def findings_of(result: Any, entry: str) -> list[Any]:
    if entry.startswith("signature"):
        return result.signatures["serving_default"]
    if entry == "main_op":
        return result.init["saved_model_main_op"]
    if entry == "saver":
        return result.init["saver_def"]
    return result.elsewhere


@dataclass(frozen=True)
class ScanCase:
    """One evasion class: a chain behind an entry, and the risky op at its end."""

    name: str
    entry: str
    links: tuple[str, ...]
    risky: str = "WriteFile"

    @property
    def op(self) -> str:
        return "DatasetFromGraph" if self.risky in OPAQUE else self.risky

    @property
    def group(self) -> tuple[str, str | None]:
        """Where scan --json must report it: ("signatures"|"init", key) or ("elsewhere", None)."""
        if self.entry.startswith("signature"):
            return "signatures", "serving_default"
        if self.entry in ("main_op", "saver"):
            return "init", "saved_model_main_op" if self.entry == "main_op" else "saver_def"
        return "elsewhere", None


CASES: list[ScanCase] = [
    ScanCase("nested_name_attr_list", "signature", ("nested_attr",)),
    ScanCase("placeholder_at_call_site", "signature", ("placeholder",)),
    ScanCase("placeholder_two_calls_away", "signature", ("placeholder_transitive",)),
    ScanCase("placeholder_behind_nested_attr", "main_op", ("nested_attr", "placeholder_transitive")),
    ScanCase("if_branch", "signature_control", ("if",)),
    ScanCase("stateless_while_cond", "signature", ("stateless_while",)),
    ScanCase("case_branch_list_func", "signature", ("case",)),
    ScanCase("custom_op_list_func", "signature", ("custom_list_attr",)),
    ScanCase("custom_op_func_attr", "signature_control", ("custom_func_attr",)),
    ScanCase("stateless_case_branch", "unreached", ("stateless_case",)),
    ScanCase("gradient_function", "signature", ("gradient",)),
    ScanCase("api_implements_sibling", "signature", ("api_implements",)),
    ScanCase("unreached_caller", "unreached", ("stateful_partitioned",)),
    ScanCase("object_graph_function", "object_graph", ("call",)),
    ScanCase("graph_in_a_const", "signature", ("embedded",)),
    ScanCase("graph_in_a_const_in_a_function", "saver", ("partitioned", "embedded", "while")),
    ScanCase("graph_in_a_graph", "signature", ("embedded", "embedded")),
    ScanCase("graph_picked_by_identity_n", "signature", ("embedded_identity_n",)),
    ScanCase("graph_calling_an_outer_function", "signature_control", ("gradient", "embedded_outer_call")),
    ScanCase("graph_from_a_placeholder", "signature", (), "opaque_placeholder"),
    ScanCase("graph_that_does_not_parse", "signature", ("call",), "opaque_garbage"),
    ScanCase("tf1_print", "signature", ("partitioned",), "Print"),
    ScanCase("reader_read", "main_op", ("stateless_if",), "ReaderReadV2"),
    ScanCase("remote_call", "signature", (), "RemoteCall"),
]


def make_scan_case(case: ScanCase, root: Path) -> Path:
    """Write `root/models/<case>/1/saved_model.pb` holding the case; returns the version folder."""
    meta, _embedded = build(case.entry, list(case.links), case.risky, decoys=1)
    model = protos.saved_model_class()()
    model.saved_model_schema_version = 1
    model.meta_graphs.add().CopyFrom(meta)
    version = root / "models" / case.name / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(model.SerializeToString(deterministic=True))
    return version
