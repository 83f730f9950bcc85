"""Graph findings: ops, graph versions, size, XLA, device pins, checkpoint, fingerprint.

All read from the protos and the checkpoint index; TensorFlow is never
imported. Ops are compared with the op list of a TensorFlow release
(`oplist`), the way `ImportGraphDef` refuses "Op type not registered ... in
binary"; graph versions the way `CheckVersions` refuses a GraphDef.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from smsurgery.core.checkpoint_index import OBJECT_GRAPH_KEY
from smsurgery.core.model import MetaGraph, SavedModelFile
from smsurgery.core.names import node_of
from smsurgery.core.oplist import OpList
from smsurgery.inspect.findings import Finding, finding
from smsurgery.inspect.restore_check import unrestored_variables

LARGE_CONST_BYTES = 16 * 2**20
# Op name prefixes of custom-op libraries a stock tensorflow_model_server does not link.
_OP_LIBRARIES = {
    "SimpleML": "TensorFlow Decision Forests (tensorflow_decision_forests)",
    "YggdrasilDecisionForests": "TensorFlow Decision Forests (tensorflow_decision_forests)",
    "Sentencepiece": "TensorFlow Text (tensorflow_text)",
    "WhitespaceTokenize": "TensorFlow Text (tensorflow_text)",
    "WordpieceTokenize": "TensorFlow Text (tensorflow_text)",
    "RegexSplitWithOffsets": "TensorFlow Text (tensorflow_text)",
    "CaseFoldUTF8": "TensorFlow Text (tensorflow_text)",
    "Addons>": "TensorFlow Addons (tensorflow_addons)",
    "TRTEngineOp": "TF-TRT (a TensorRT-enabled TensorFlow)",
}
GIB = 2**30
_RESTORE_OPS = {"RestoreV2", "Restore", "RestoreSlice"}
_XLA_ATTRS = ("_XlaMustCompile", "_XlaCompile")


def _scopes(meta: MetaGraph) -> Iterator[tuple[str | None, Any]]:
    """(function name or None, node) for every node of the graph and of every function."""
    for node in meta.graph_def.node:
        yield None, node
    for function in meta.graph_def.library.function:
        for node in function.node_def:
            yield function.signature.name, node


def _where(function: str | None, node: Any) -> str:
    return node.name if function is None else f"{function}/{node.name}"


def op_findings(meta: MetaGraph, target: OpList) -> list[Finding]:
    functions = {f.signature.name for f in meta.graph_def.library.function}
    missing: dict[str, list[str]] = collections.defaultdict(list)
    for function, node in _scopes(meta):
        if node.op not in target.ops and node.op not in functions:
            missing[node.op].append(_where(function, node))
    found = []
    for op, places in sorted(missing.items()):
        more = f" and {len(places) - 1} more" if len(places) > 1 else ""
        library = next((lib for prefix, lib in _OP_LIBRARIES.items() if op.startswith(prefix)), None)
        where = f"an op of {library}" if library else "a custom op, or an op of a newer TensorFlow?"
        found.append(
            finding(
                "SM-OPS-UNREGISTERED",
                f"op {op}",
                f"Op type not registered '{op}' in TensorFlow {target.version} (used by {places[0]}{more}): {where}",
                f"serve with a TensorFlow Serving build that links {library}" if library else None,
            )
        )
    return found


def graph_version_findings(meta: MetaGraph, target: OpList) -> list[Finding]:
    versions = meta.graph_def.versions
    subject = "graph versions"
    if versions.min_consumer > target.producer:
        return [
            finding(
                "SM-GRAPH-MIN-CONSUMER",
                subject,
                f"GraphDef min consumer version {versions.min_consumer} above TensorFlow {target.version}'s "
                f"version {target.producer}",
            )
        ]
    if versions.producer < target.min_producer:
        return [
            finding(
                "SM-GRAPH-PRODUCER-OLD",
                subject,
                f"GraphDef producer version {versions.producer} below TensorFlow {target.version}'s minimum "
                f"{target.min_producer}",
            )
        ]
    if versions.producer > target.producer:
        return [
            finding(
                "SM-GRAPH-PRODUCER-NEWER",
                subject,
                f"written by a newer TensorFlow (producer {versions.producer}) than {target.version} "
                f"({target.producer}); ops may have attributes it does not know",
            )
        ]
    return []


def size_findings(model: SavedModelFile, meta: MetaGraph) -> list[Finding]:
    found = []
    size = model.ref.saved_model_file.stat().st_size
    if size >= 2 * GIB:
        found.append(
            finding("SM-SIZE-OVER-2GB", "saved_model.pb", f"{size} bytes: protobuf cannot parse a message this big")
        )
    elif size >= GIB:
        found.append(
            finding(
                "SM-SIZE-OVER-1GB", "saved_model.pb", f"{size} bytes: TensorFlow Serving has refused files over 1 GB"
            )
        )
    for function, node in _scopes(meta):
        if node.op == "Const":
            tensor = node.attr["value"].tensor
            nbytes = len(tensor.tensor_content) + sum(len(s) for s in tensor.string_val)
            if nbytes >= LARGE_CONST_BYTES:
                found.append(
                    finding(
                        "SM-SIZE-LARGE-CONST",
                        f"node {_where(function, node)}",
                        f"a {nbytes}-byte Const in the graph: it is parsed, copied and kept in memory with it",
                    )
                )
    return found


def xla_findings(meta: MetaGraph) -> list[Finding]:
    found = []
    for function in meta.graph_def.library.function:
        if any(function.attr[a].b for a in _XLA_ATTRS if a in function.attr):
            found.append(
                finding(
                    "SM-XLA-JIT",
                    f"function {function.signature.name}",
                    "compiled with XLA (jit_compile): fails on the first request unless Serving runs with "
                    "--xla_cpu_compilation_enabled (or the GPU flag)",
                )
            )
    for function, node in _scopes(meta):
        if any(node.attr[a].b for a in _XLA_ATTRS if a in node.attr):
            found.append(
                finding(
                    "SM-XLA-JIT",
                    f"node {_where(function, node)}",
                    "marked _XlaMustCompile: fails unless Serving runs with --xla_cpu_compilation_enabled",
                )
            )
    return found


def device_findings(meta: MetaGraph, path: str) -> list[Finding]:
    pins: collections.Counter[str] = collections.Counter()
    for _function, node in _scopes(meta):
        if "GPU" in node.device.upper():
            pins[node.device] += 1
    return [
        finding(
            "SM-DEVICE-GPU",
            f"device {device}",
            f"{count} node(s) pinned to {device}: a server without that GPU fails with 'Cannot assign a device' "
            "unless soft placement is on",
            f"smsurgery devices strip {path}",
        )
        for device, count in sorted(pins.items())
    ]


def restored_names(meta: MetaGraph) -> set[str] | None:
    """Checkpoint keys the graph's restore ops read (None: the graph restores nothing)."""
    restores = [(f, node) for f, node in _scopes(meta) if node.op in _RESTORE_OPS and len(node.input) > 1]
    if not restores:  # most graphs `show` reads: one pass over the ops, no Const kept
        return None
    wanted = {(function, node_of(node.input[1])) for function, node in restores}
    consts: dict[tuple[str | None, str], Any] = {
        (f, node.name): node for f, node in _scopes(meta) if node.op == "Const" and (f, node.name) in wanted
    }
    names: set[str] = set()
    for function, node in restores:
        source = consts.get((function, node_of(node.input[1])))
        if source is None:
            return None  # names computed at run time: we cannot tell
        names.update(v.decode("utf-8", "replace") for v in source.attr["value"].tensor.string_val)
    return names


def checkpoint_findings(model: SavedModelFile, meta: MetaGraph) -> list[Finding]:
    restored = restored_names(meta)
    if restored is None or not model.index_path.is_file():
        return []
    indexed = {entry.name for entry in model.index_entries()}
    found = []
    extra = sorted(indexed - restored - {OBJECT_GRAPH_KEY})
    if extra:
        more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
        found.append(
            finding(
                "SM-CKPT-EXTRA",
                "variables/variables.index",
                f"{len(extra)} tensor(s) the graph's variables do not have: {', '.join(extra[:3])}{more} "
                "(optimizer slots, or an index from another model)",
                f"smsurgery prune {model.ref}",
            )
        )
    missing = sorted(restored - indexed - {OBJECT_GRAPH_KEY})
    if missing:
        found.append(
            finding(
                "SM-CKPT-MISSING",
                "variables/variables.index",
                f"the graph restores {', '.join(missing[:3])}, which the checkpoint lacks: loading fails with "
                "'Key ... not found in checkpoint'",
            )
        )
    return found


def tf1_restore_findings(meta: MetaGraph, path: str) -> list[Finding]:
    found = []
    for key, names in unrestored_variables(meta.proto).items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        found.append(
            finding(
                "SM-TF1-UNRESTORED",
                f"signature '{key}'",
                f"it reads variables the TF1 session loader (Serving's) never restores: {', '.join(names[:3])}{more}; "
                f"every request fails with 'Could not find variable {names[0]}' (a Keras model saved with "
                "tf.saved_model.save instead of model.export?)",
                f"smsurgery reexport {path}",
            )
        )
    return found
