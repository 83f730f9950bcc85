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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery import protos
from smsurgery.model import INIT_OP_SIGNATURE, SavedModelFile, read

FILE_SYSTEM = "file system"
CODE = "code execution"
NETWORK = "network"
DEBUG = "debug"
OUTPUT = "output"

_FILE_OPS = {
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files matching a pattern",
    "ImmutableConst": "maps a file into memory",
    "Save": "writes a checkpoint",
    "SaveV2": "writes a checkpoint",
    "SaveSlices": "writes a checkpoint",
    "MergeV2Checkpoints": "writes and deletes checkpoint files",
    "Restore": "reads a checkpoint",
    "RestoreV2": "reads a checkpoint",
    "RestoreSlice": "reads a checkpoint",
    "LoadAndRemapMatrix": "reads a checkpoint",
    "GenerateVocabRemapping": "reads vocabulary files",
    "InitializeTableFromTextFile": "fills a table from a text file",
    "InitializeTableFromTextFileV2": "fills a table from a text file",
    "WholeFileReader": "reads files",
    "WholeFileReaderV2": "reads files",
    "TextLineReader": "reads files",
    "TextLineReaderV2": "reads files",
    "TFRecordReader": "reads files",
    "TFRecordReaderV2": "reads files",
    "FixedLengthRecordReader": "reads files",
    "FixedLengthRecordReaderV2": "reads files",
    "LMDBReader": "reads files",
    "TextLineDataset": "reads files",
    "TFRecordDataset": "reads files",
    "TFRecordDatasetV2": "reads files",
    "FixedLengthRecordDataset": "reads files",
    "FixedLengthRecordDatasetV2": "reads files",
    "MatchingFilesDataset": "lists files matching a pattern",
    "ExperimentalMatchingFilesDataset": "lists files matching a pattern",
    "CSVDataset": "reads files",
    "CSVDatasetV2": "reads files",
    "ExperimentalCSVDataset": "reads files",
    "LMDBDataset": "reads files",
    "ExperimentalLMDBDataset": "reads files",
    "SqlDataset": "opens a database file",
    "ExperimentalSqlDataset": "opens a database file",
    "LoadDataset": "reads files",
    "SaveDataset": "writes files",
    "SaveDatasetV2": "writes files",
    "CacheDataset": "may write cache files",
    "CacheDatasetV2": "may write cache files",
    "SnapshotDataset": "writes and reads snapshot files",
    "SnapshotDatasetV2": "writes and reads snapshot files",
    "SnapshotDatasetReader": "reads snapshot files",
    "SnapshotNestedDatasetReader": "reads snapshot files",
    "DatasetToTFRecord": "writes files",
    "ExperimentalDatasetToTFRecord": "writes files",
    "CreateSummaryFileWriter": "writes event files",
    "CreateSummaryDbWriter": "writes a database file",
    "WriteSummary": "writes event files",
    "WriteRawProtoSummary": "writes event files",
    "WriteScalarSummary": "writes event files",
    "WriteHistogramSummary": "writes event files",
    "WriteImageSummary": "writes event files",
    "WriteAudioSummary": "writes event files",
    "WriteGraphSummary": "writes event files",
    "ImportEvent": "writes event files",
}
_CODE_OPS = {
    "PyFunc": "runs a Python function of the exporting process",
    "PyFuncStateless": "runs a Python function of the exporting process",
    "EagerPyFunc": "runs a Python function of the exporting process",
    "MlirPassthroughOp": "runs an embedded MLIR module that scan cannot inspect",
}
_NETWORK_OPS = {
    name: "talks to a remote server"
    for name in (
        "Rpc", "TryRpc", "RpcClient", "RpcCall", "RpcServer", "RpcServerStart", "RpcServerRegister",
        "RpcCheckStatus", "RpcGetValue", "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2", "GcsConfigureCredentials",
        "GcsConfigureBlockCache", "BigQueryReader", "GenerateBigQueryReaderPartitions",
    )
}  # fmt: skip
_DEBUG_OPS = {
    name: "debug op: with debug_urls it writes files or sends tensors over the network"
    for name in (
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
        "DebugNumericSummaryV2", "Copy", "CopyHost",
    )
}  # fmt: skip

# Op type -> (category, why it is reported). Covers saved_model_cli's own
# denylist (ReadFile, WriteFile, PrintV2); PrintV2 and the proto codecs are
# judged by their attributes in `_classify`.
DENYLIST: dict[str, tuple[str, str]] = {
    **{op: (FILE_SYSTEM, why) for op, why in _FILE_OPS.items()},
    **{op: (CODE, why) for op, why in _CODE_OPS.items()},
    **{op: (NETWORK, why) for op, why in _NETWORK_OPS.items()},
    **{op: (DEBUG, why) for op, why in _DEBUG_OPS.items()},
    "PrintV2": (OUTPUT, "prints to the server's log"),
}
_ATTR_JUDGED = {"PrintV2", "DecodeProtoV2", "EncodeProto", "Copy", "CopyHost"}
SAVED_MODEL_CLI_DENYLIST = frozenset({"ReadFile", "WriteFile", "PrintV2"})
# The checkpoint machinery: expected when only the saver (or nothing) reaches it.
CHECKPOINT_OPS = frozenset(
    {"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "Restore", "RestoreV2", "RestoreSlice"}
)
SAVER_SOURCE = "saver_def"
INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "table_initializer")
_TABLE_FROM_FILE = {"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"}
_PASS_THROUGH = {"Identity", "Snapshot", "StopGradient", "IdentityN"}
# Where a called function's first argument sits among the caller's inputs.
_ARG_OFFSET = {"f": 0, "body": 0, "cond": 0, "then_branch": 1, "else_branch": 1, "branches": 1}


@dataclass(frozen=True)
class Finding:
    """One risky node: its op type, where it is, and why it matters."""

    op: str
    category: str
    reason: str
    node: str
    function: str | None  # None: a node of the graph itself

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "category": self.category,
            "reason": self.reason,
            "node": self.node,
            "function": self.function,
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


NodeKey = tuple[str | None, str]  # (function name or None for the graph, node name)


def _node_name(tensor: str) -> str:
    """`^a`, `a:0`, `a:out:0` -> `a` (graph and function input syntax alike)."""
    return tensor.lstrip("^").split(":", 1)[0]


def _called_functions(node: Any, functions: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(attribute, function name) of every function a node calls."""
    if node.op in functions:
        yield "op", node.op
    for attr_name, value in node.attr.items():
        kind = value.WhichOneof("value")
        if kind == "func" and value.func.name:
            yield attr_name, value.func.name
        elif kind == "list":
            for func in value.list.func:
                yield attr_name, func.name


class GraphIndex:
    """Lookups over a meta graph: nodes, functions, who calls each function."""

    def __init__(self, meta_graph: Any) -> None:
        self.meta_graph = meta_graph
        self.nodes = {node.name: node for node in meta_graph.graph_def.node}
        self.functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
        self.function_nodes = {
            name: {node.name: node for node in function.node_def} for name, function in self.functions.items()
        }
        self.callers: dict[str, list[tuple[str | None, Any, str]]] = {}
        for context, nodes in [(None, self.nodes), *self.function_nodes.items()]:
            for node in nodes.values():
                for attr, callee in _called_functions(node, self.functions):
                    self.callers.setdefault(callee, []).append((context, node, attr))
        self.asset_tensors = asset_tensor_names(meta_graph)

    def reach(self, roots: Iterable[str], functions: Iterable[str] = ()) -> set[NodeKey]:
        """Graph nodes upstream of `roots`, plus every node of every function they (or we) call."""
        seen: set[NodeKey] = set()
        stack = [_node_name(root) for root in roots if root]
        functions = list(functions)
        while stack:
            name = stack.pop()
            if (None, name) in seen or name not in self.nodes:
                continue
            seen.add((None, name))
            node = self.nodes[name]
            stack.extend(_node_name(i) for i in node.input)
            functions.extend(callee for _attr, callee in _called_functions(node, self.functions))
        done: set[str] = set()
        while functions:
            function = functions.pop()
            if function in done or function not in self.functions:
                continue
            done.add(function)
            for name, node in self.function_nodes[function].items():
                seen.add((function, name))
                functions.extend(callee for _attr, callee in _called_functions(node, self.functions))
        return seen

    def object_graph_functions(self) -> set[str]:
        """Functions a `tf.saved_model.load` caller can call: those the object graph names."""
        graph = self.meta_graph.object_graph_def
        names = set(graph.concrete_functions)
        for node in graph.nodes:
            kind = node.WhichOneof("kind")
            if kind == "function":
                names.update(node.function.concrete_functions)
            elif kind == "bare_concrete_function":
                names.add(node.bare_concrete_function.concrete_function_name)
        return names & set(self.functions)

    def node(self, key: NodeKey) -> Any:
        function, name = key
        return self.nodes[name] if function is None else self.function_nodes[function][name]

    def traces_to_asset(self, context: str | None, tensor: str, depth: int = 0) -> bool:
        """Whether `tensor` (in a graph or function context) is an asset file path.

        Follows Identity-like nodes, and function arguments back to every call
        site; anything else (a constant path, a computed string) is not an asset.
        """
        if depth > 64 or tensor.startswith("^"):
            return False
        name = _node_name(tensor)
        if context is None:
            if name not in self.nodes:
                return False
            parts = tensor.split(":")
            if f"{name}:{parts[1] if len(parts) > 1 else 0}" in self.asset_tensors:
                return True
            node = self.nodes[name]
        else:
            function = self.functions[context]
            args = [arg.name for arg in function.signature.input_arg]
            if name in args and ":" not in tensor:
                return self._arg_traces_to_asset(context, args.index(name), depth)
            node = self.function_nodes[context].get(name)
            if node is None:
                return False
        data_inputs = [i for i in node.input if not i.startswith("^")]
        if node.op in _PASS_THROUGH and data_inputs:
            return self.traces_to_asset(context, data_inputs[0], depth + 1)
        if node.op == "ReadVariableOp" and context is None and data_inputs:
            # TF2 keeps an asset path in a variable: every value assigned to it must be an asset.
            values = self._assigned_values(_node_name(data_inputs[0]))
            return bool(values) and all(self.traces_to_asset(None, value, depth + 1) for value in values)
        return False

    def _assigned_values(self, variable: str) -> list[str]:
        """Value inputs of the graph's Assign/AssignVariableOp nodes that write `variable`."""
        values = []
        for node in self.nodes.values():
            inputs = [i for i in node.input if not i.startswith("^")]
            if node.op in ("AssignVariableOp", "Assign") and len(inputs) > 1 and _node_name(inputs[0]) == variable:
                values.append(inputs[1])
        return values

    def _arg_traces_to_asset(self, function: str, position: int, depth: int) -> bool:
        calls = self.callers.get(function, [])
        if not calls:
            return False
        for context, node, attr in calls:
            offset = _ARG_OFFSET.get(attr, 0 if attr == "op" else None)
            data_inputs = [i for i in node.input if not i.startswith("^")]
            if offset is None or offset + position >= len(data_inputs):
                return False
            if not self.traces_to_asset(context, data_inputs[offset + position], depth + 1):
                return False
        return True


def asset_tensor_names(meta_graph: Any) -> set[str]:
    """Tensors that the loader feeds with asset file paths (`name:0`)."""
    names = {asset.tensor_info.name for asset in meta_graph.asset_file_def}
    asset_class = protos.message_class("tensorflow/core/protobuf/meta_graph.proto", "tensorflow.AssetFileDef")
    if "saved_model_assets" in meta_graph.collection_def:
        for packed in meta_graph.collection_def["saved_model_assets"].any_list.value:
            if packed.type_url.endswith("tensorflow.AssetFileDef"):
                try:
                    names.add(asset_class.FromString(packed.value).tensor_info.name)
                except Exception:  # a broken entry names no asset
                    continue
    if "asset_filepaths" in meta_graph.collection_def:
        names.update(meta_graph.collection_def["asset_filepaths"].node_list.value)
    return {name if ":" in name else f"{name}:0" for name in names if name}


def _attr_text(node: Any, name: str) -> str:
    return node.attr[name].s.decode("utf-8", "replace") if name in node.attr else ""


def _classify(index: GraphIndex, key: NodeKey, node: Any) -> tuple[str, str] | None:
    """(category, reason) when this node is risky, else None."""
    op = node.op
    if op not in DENYLIST and op not in _ATTR_JUDGED:
        return None
    if op == "PrintV2":
        stream = _attr_text(node, "output_stream")
        if stream.startswith("file://"):
            return FILE_SYSTEM, f"appends to the file {stream[len('file://') :]}"
        return OUTPUT, f"prints to the server's {stream or 'stderr'}"
    if op in ("DecodeProtoV2", "EncodeProto"):
        source = _attr_text(node, "descriptor_source")
        if source in ("", "local://"):
            return None
        return FILE_SYSTEM, f"reads proto descriptors from {source}"
    if op in ("Copy", "CopyHost"):
        specs = node.attr["debug_ops_spec"].list.s if "debug_ops_spec" in node.attr else []
        return DENYLIST[op] if len(specs) else None
    if op == "ImmutableConst":
        return FILE_SYSTEM, f"maps the file {_attr_text(node, 'memory_region_name')} into memory"
    if op in _TABLE_FROM_FILE:
        data_inputs = [i for i in node.input if not i.startswith("^")]
        if len(data_inputs) > 1 and index.traces_to_asset(key[0], data_inputs[1]):
            return None  # a vocabulary file shipped in assets/: what the loader expects
        return FILE_SYSTEM, "fills a table from a text file that is not one of the model's assets"
    return DENYLIST[op]


def _findings(index: GraphIndex, keys: Iterable[NodeKey]) -> list[Finding]:
    found: list[Finding] = []
    for key in sorted(keys, key=lambda k: (k[0] or "", k[1])):
        node = index.node(key)
        verdict = _classify(index, key, node)
        if verdict is not None:
            found.append(Finding(node.op, verdict[0], verdict[1], node=key[1], function=key[0]))
    return found


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


def scan_meta_graph(meta_graph: Any, *, signature: str | None = None) -> MetaGraphScan:
    """Risky ops per signature, per init op, and elsewhere in one meta graph."""
    index = GraphIndex(meta_graph)
    result = MetaGraphScan(tags=tuple(meta_graph.meta_info_def.tags))
    reached: set[NodeKey] = set()
    keys = sorted(k for k in meta_graph.signature_def if k != INIT_OP_SIGNATURE)
    for key in keys:
        nodes = index.reach(signature_roots(meta_graph.signature_def[key]))
        reached |= nodes
        if signature is None or key == signature:
            result.signatures[key] = _findings(index, nodes)
    for source, roots in init_roots(meta_graph).items():
        nodes = index.reach(roots)
        reached |= nodes
        result.init[source] = _findings(index, nodes)
    # The loader runs the saver's restore op on every load: only checkpoint ops are expected there.
    saver_nodes = index.reach(saver_roots(meta_graph)) - reached
    saver_checkpoint = {key for key in saver_nodes if index.node(key).op in CHECKPOINT_OPS}
    if saver_roots(meta_graph):
        result.init[SAVER_SOURCE] = _findings(index, saver_nodes - saver_checkpoint)
    # Graph nodes a TF1 caller may run by name, and functions a TF2 caller may call.
    # Functions that nothing references at all are dead and cannot run.
    rest = index.reach((), index.object_graph_functions()) | {(None, name) for name in index.nodes}
    rest -= reached | saver_nodes
    checkpoint = {key for key in rest if index.node(key).op in CHECKPOINT_OPS}
    result.saver_ops = sorted({index.node(k).op for k in saver_checkpoint | checkpoint})
    if signature is None:
        result.elsewhere = _findings(index, rest - checkpoint)
    return result


SCAN_SCHEMA = "smsurgery.scan/1"


def scan_model(
    model: SavedModelFile, *, tags: tuple[str, ...] | None = None, signature: str | None = None
) -> dict[str, Any]:
    """The `scan --json` report: every meta graph, or only the one asked for.

    Without `tags` and `signature` all meta graphs are scanned (a risky op in
    a `[serve,gpu]` graph matters as much as one in `[serve]`); either option
    picks one meta graph by the same rule as `show`.
    """
    if tags is None and signature is None:
        metas = list(model.proto.meta_graphs)
    else:
        meta = model.meta_graph(tags)
        if signature is not None:
            meta.signature(signature)  # SignatureNotFound names the ones that exist
        metas = [meta.proto]
    scans = [scan_meta_graph(meta, signature=signature) for meta in metas]
    ref = model.ref
    return {
        "schema": SCAN_SCHEMA,
        "path": str(ref.version_dir),
        "base": str(ref.base) if ref.base is not None else None,
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
