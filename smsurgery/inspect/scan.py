"""Which ops of a SavedModel touch the file system, the network, or run code.

`saved_model_cli scan` looks for three op types (ReadFile, WriteFile,
PrintV2) anywhere in the graph and its functions, and cannot say *when* one
would run. This module answers per signature and per init op, with a longer
list: it walks backwards from a signature's output tensors (data and
control inputs) and into every function a node calls (the `f` attribute,
any attribute of type func or list(func), While/If/Case bodies, ops named
after a function), transitively. A called function counts whole:
TensorFlow runs every stateful op of a function, whatever its outputs.

Checkpoint ops (SaveV2, RestoreV2, MergeV2Checkpoints, ...) that only the
saver reaches are the machinery every SavedModel has, and are not reported;
any other risky op behind the saver is reported as an init op
(`saver_def`), because loaders restore on load. Ops that nothing reaches
are reported apart ("elsewhere"): Serving never runs them, but a TF1 caller
may run a node by name and a `tf.saved_model.load` caller may call a
function of the object graph.

`scan_meta_graph` is pure (a MetaGraphDef proto in, findings out); `scan`
reads the model and returns the JSON-ready report of `smsurgery scan`.
TensorFlow is never imported and nothing of the model is executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message as pb_message

from smsurgery.core.graphmodel import data_inputs
from smsurgery.core.lean_graph import lean_graph_def
from smsurgery.core.lean_spans import split_graph_def
from smsurgery.core.model import INIT_OP_SIGNATURE, MetaGraph, SavedModelFile, read
from smsurgery.inspect.scan_assets import AssetTracer, asset_tensor_names
from smsurgery.inspect.scan_graph import Hit, Key, ScanGraph
from smsurgery.inspect.scan_ops import (
    CHECKPOINT_OPS,
    DENYLIST,
    FILE_SYSTEM,
    OUTPUT,
    SAVED_MODEL_CLI_DENYLIST,
    TABLE_FROM_FILE,
)

__all__ = ["CHECKPOINT_OPS", "DENYLIST", "SAVED_MODEL_CLI_DENYLIST", "Finding", "scan", "scan_meta_graph"]

SAVER_SOURCE = "saver_def"
INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "table_initializer")


@dataclass(frozen=True)
class Finding:
    """One risky node: its op type, where it is, and why it matters."""

    op: str
    category: str
    reason: str
    node: str
    function: str | None  # None: a node of the graph itself
    embedded_in: str | None = None  # the node(s) whose serialized graph holds this one

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "category": self.category,
            "reason": self.reason,
            "node": self.node,
            "function": self.function,
            "embedded_in": self.embedded_in,
        }


@dataclass
class MetaGraphScan:
    """Findings of one meta graph, grouped by what would run them."""

    tags: tuple[str, ...]
    signatures: dict[str, list[Finding]] = field(default_factory=dict)
    init: dict[str, list[Finding]] = field(default_factory=dict)
    elsewhere: list[Finding] = field(default_factory=list)
    saver_ops: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        groups = [*self.signatures.values(), *self.init.values(), self.elsewhere]
        return sum(len(group) for group in groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "tags": list(self.tags),
            "signatures": {k: [f.to_json() for f in v] for k, v in self.signatures.items()},
            "init": {k: [f.to_json() for f in v] for k, v in self.init.items()},
            "elsewhere": [f.to_json() for f in self.elsewhere],
            "saver_ops": list(self.saver_ops),
            "count": self.count,
        }


def _attr(node: Any, name: str) -> tuple[str, bool]:
    """(text of a string attr, whether it is a placeholder the caller binds)."""
    if name not in node.attr:
        return "", False
    value = node.attr[name]
    if value.WhichOneof("value") == "placeholder":
        return value.placeholder, True
    return value.s.decode("utf-8", "replace"), False


def classify(hit: Hit, tracer: AssetTracer | None) -> tuple[str, str] | None:
    """(category, reason) when this node is risky, else None."""
    node, op = hit.node, hit.node.op
    if op == "PrintV2":
        stream, bound = _attr(node, "output_stream")
        if bound:
            return FILE_SYSTEM, f"prints to a stream its caller chooses (attr '{stream}'), maybe a file"
        if stream.startswith("file://"):
            return FILE_SYSTEM, f"appends to the file {stream[len('file://') :]}"
        return OUTPUT, f"prints to the server's {stream or 'stderr'}"
    if op in ("DecodeProtoV2", "EncodeProto"):
        source, bound = _attr(node, "descriptor_source")
        if source in ("", "local://") and not bound:
            return None
        return FILE_SYSTEM, f"reads proto descriptors from {'a source its caller chooses' if bound else source}"
    if op in ("Copy", "CopyHost"):
        if "debug_ops_spec" not in node.attr:
            return None
        specs = node.attr["debug_ops_spec"]
        bound = specs.WhichOneof("value") == "placeholder"
        return DENYLIST[op] if bound or len(specs.list.s) else None
    if op == "FixedUnigramCandidateSampler":
        vocab, bound = _attr(node, "vocab_file")
        return (FILE_SYSTEM, f"reads the vocabulary file {vocab}") if vocab or bound else None
    if op == "ImmutableConst":
        return FILE_SYSTEM, f"maps the file {_attr(node, 'memory_region_name')[0]} into memory"
    if op in TABLE_FROM_FILE:
        inputs = data_inputs(node)
        if tracer is not None and len(inputs) > 1 and tracer.traces_to_asset(hit.key[1], inputs[1]):
            return None  # a vocabulary file shipped in assets/: what the loader expects
        return FILE_SYSTEM, "fills a table from a text file that is not one of the model's assets"
    return DENYLIST.get(op)


def _finding(hit: Hit, verdict: tuple[str, str]) -> Finding:
    embedded_in, function, name = hit.key
    return Finding(hit.node.op, verdict[0], verdict[1], node=name, function=function, embedded_in=embedded_in or None)


def signature_roots(signature_def: Any) -> list[str]:
    """Tensor names a signature fetches: plain, sparse and composite outputs."""
    roots: list[str] = []
    for info in signature_def.outputs.values():
        encoding = info.WhichOneof("encoding")
        if encoding == "coo_sparse":
            coo = info.coo_sparse
            roots += [coo.values_tensor_name, coo.indices_tensor_name, coo.dense_shape_tensor_name]
        elif encoding == "composite_tensor":
            roots += [component.name for component in info.composite_tensor.components]
        else:
            roots.append(info.name)
    return roots


def init_roots(meta_graph: Any) -> dict[str, list[str]]:
    """What a loader runs when it loads the meta graph, by where it is declared."""
    roots: dict[str, list[str]] = {}
    if INIT_OP_SIGNATURE in meta_graph.signature_def:
        roots[INIT_OP_SIGNATURE] = signature_roots(meta_graph.signature_def[INIT_OP_SIGNATURE])
    for collection in INIT_COLLECTIONS:
        if collection in meta_graph.collection_def:
            values = list(meta_graph.collection_def[collection].node_list.value)
            if values:
                roots[collection] = values
    return roots


def saver_roots(meta_graph: Any) -> list[str]:
    saver = meta_graph.saver_def
    return [name for name in (saver.save_tensor_name, saver.restore_op_name, saver.filename_tensor_name) if name]


def object_graph_functions(meta_graph: Any, functions: dict[str, Any]) -> set[str]:
    """Functions a `tf.saved_model.load` caller can call: those the object graph names."""
    graph = meta_graph.object_graph_def
    names = set(graph.concrete_functions)
    for node in graph.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            names.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names.add(node.bare_concrete_function.concrete_function_name)
    return names & set(functions)


def scan_meta_graph(meta_graph: Any, *, signature: str | None = None, graph_def: Any = None) -> MetaGraphScan:
    """Risky ops per signature, per init op, and elsewhere in one meta graph.

    One walk: bit i of a node's mask says root group i (each signature, each
    init source, the saver) reaches it; the last bit marks what only a TF1
    caller running a node by name, or a TF2 caller of an object-graph
    function, could run ("elsewhere"). `graph_def`, when given, is the graph
    of `meta_graph` (then a MetaGraphDef without it, as a skimmed read has).
    """
    graph = ScanGraph(meta_graph.graph_def if graph_def is None else graph_def)
    tracer = AssetTracer(graph, asset_tensor_names(meta_graph))
    result = MetaGraphScan(tags=tuple(meta_graph.meta_info_def.tags))
    keys = sorted(k for k in meta_graph.signature_def if k != INIT_OP_SIGNATURE)
    inits = init_roots(meta_graph)
    groups = [signature_roots(meta_graph.signature_def[k]) for k in keys] + list(inits.values())
    groups.append(saver_roots(meta_graph))
    saver_bit, elsewhere_bit = 1 << (len(groups) - 1), 1 << len(groups)
    served = saver_bit - 1  # every signature and init bit
    for key in keys:
        if signature is None or key == signature:
            result.signatures[key] = []
    for source in inits:
        result.init[source] = []
    if saver_roots(meta_graph):
        result.init[SAVER_SOURCE] = []
    saver_ops: set[str] = set()
    hits: dict[Key, Hit] = {}
    for hit in graph.hits(groups, object_graph_functions(meta_graph, graph.functions), elsewhere_bit):
        # A function of an outer library called from an embedded graph is one node, however reached.
        seen = hits.setdefault(hit.key, hit)
        seen.mask |= hit.mask
    for hit in sorted(hits.values(), key=lambda h: (h.key[0], h.key[1] or "", h.key[2])):
        groups_hit = [i for i in range(len(keys) + len(inits)) if hit.mask >> i & 1]
        if not groups_hit and hit.node.op in CHECKPOINT_OPS and not hit.key[0]:
            saver_ops.add(hit.node.op)  # the saver's machinery, or a stray copy of it: expected
            continue
        verdict = classify(hit, tracer if not hit.key[0] else None)
        if verdict is None:
            continue
        finding = _finding(hit, verdict)
        for i in groups_hit:
            if i < len(keys):
                if keys[i] in result.signatures:
                    result.signatures[keys[i]].append(finding)
            else:
                result.init[list(inits)[i - len(keys)]].append(finding)
        if hit.mask & served:
            continue
        if hit.mask & saver_bit:
            result.init[SAVER_SOURCE].append(finding)
        elif signature is None:
            result.elsewhere.append(finding)
    result.saver_ops = sorted(saver_ops)
    return result


SCAN_SCHEMA = "smsurgery.scan/1"


def _scan_one(meta: MetaGraph, signature: str | None) -> MetaGraphScan:
    """Scan one meta graph, its graph parsed lean from the file's mapping when the file was skimmed.

    Each graph is parsed on its own: never the whole SavedModel at once. A
    lean parse skips what the walk never reads (the attributes of plain
    nodes), and a large graph of few nodes leaves its big ones (frozen
    weights) in the file. Damage met on the way, or in a node made whole,
    sends the scan to the full parse, which refuses the file with the error
    it always gave.
    """
    skimmed = meta.model.skimmed
    if skimmed is not None:
        try:
            graph = split_graph_def(skimmed, meta.position)  # frozen weights stay in the file
            if graph is None:
                graph = lean_graph_def(skimmed, meta.position)
            return scan_meta_graph(meta.skim, signature=signature, graph_def=graph)
        except (pb_message.DecodeError, RuntimeError, ValueError):
            pass  # the full parse below names the damage
    return scan_meta_graph(meta.skim, signature=signature, graph_def=meta.graph_def)


def scan_model(
    model: SavedModelFile, *, tags: tuple[str, ...] | None = None, signature: str | None = None
) -> dict[str, Any]:
    """The `scan --json` report: every meta graph, or only the one asked for.

    Without `tags` and `signature` all meta graphs are scanned (a risky op in
    a `[serve,gpu]` graph matters as much as one in `[serve]`); either option
    picks one meta graph by the same rule as `show`.
    """
    if tags is None and signature is None:
        metas = [MetaGraph(model, position) for position in range(len(model.skim.meta_graphs))]
    else:
        meta = model.meta_graph(tags)
        if signature is not None:
            meta.signature(signature)  # SignatureNotFound names the ones that exist
        metas = [meta]
    scans = [_scan_one(meta, signature) for meta in metas]
    ref = model.ref
    return {
        "schema": SCAN_SCHEMA,
        "path": ref.location,
        "base": str(ref.base_location) if ref.base_location is not None else None,
        "version": ref.version,
        "clean": all(s.count == 0 for s in scans),
        "count": sum(s.count for s in scans),
        "meta_graphs": [s.to_json() for s in scans],
    }


def scan(
    path: str | Path,
    *,
    version: int | None = None,
    tags: tuple[str, ...] | None = None,
    signature: str | None = None,
) -> dict[str, Any]:
    """Read a model (protos only) and scan it; see `scan_model`."""
    return scan_model(read(path, version), tags=tags, signature=signature)
