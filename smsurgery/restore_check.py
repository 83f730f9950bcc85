"""Recognise, from protos alone, a TF2 export whose signatures the TF1 session loader cannot run.

Keras 3 models saved with `tf.saved_model.save` (not `model.export`) load
with `tf.saved_model.load`, but under the TF1 loader (Serving's) they fail
at the first request with "FailedPreconditionError: Could not find variable
...". What the protos show: the signature's call node reads variable
handles (VarHandleOp, by `shared_name`) that the saver's restore call never
receives, so nothing restores them in a session; the checkpoint restores a
second set of handles (`Variable`, `Variable_1`, ...) instead.
`smsurgery reexport` writes such a model again through TensorFlow.
"""

from __future__ import annotations

from typing import Any

from smsurgery import objectgraph

INIT_OP_SIGNATURE = objectgraph.INIT_OP_SIGNATURE


def _handles(node: Any, nodes: dict[str, Any]) -> list[str]:
    """shared_names of the VarHandleOps among `node`'s inputs."""
    names = []
    for reference in node.input:
        source = nodes.get(reference.lstrip("^").split(":")[0])
        if source is not None and source.op == "VarHandleOp":
            names.append(source.attr["shared_name"].s.decode(errors="replace") or source.name)
    return names


def unrestored_variables(meta: Any) -> dict[str, list[str]]:
    """Signature key -> variables its call reads that the TF1 loader's restore op never restores."""
    nodes = {node.name: node for node in meta.graph_def.node}
    restore = nodes.get(meta.saver_def.restore_op_name.split(":")[0])
    if restore is None or restore.op not in objectgraph.CALL_OPS or not objectgraph.has_object_graph(meta):
        return {}
    restored = set(_handles(restore, nodes))
    found: dict[str, list[str]] = {}
    for key, signature in meta.signature_def.items():
        if key == INIT_OP_SIGNATURE:
            continue
        calls = {info.name.split(":")[0] for info in signature.outputs.values() if info.name}
        missing = sorted({name for call in calls if call in nodes for name in _handles(nodes[call], nodes)} - restored)
        if missing:
            found[key] = missing
    return found


def tf1_loader_warning(meta: Any) -> str | None:
    """One line for `show` when the TF1 loader (Serving) would fail to run some signature, else None."""
    found = unrestored_variables(meta)
    if not found:
        return None
    key, names = next(iter(sorted(found.items())))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"the TF1 session loader (TensorFlow Serving) cannot run {', '.join(sorted(found))}: "
        f"'{key}' reads variables the checkpoint restore never fills ({shown}); this is how Keras 3 models saved "
        "with tf.saved_model.save look. Fix: smsurgery reexport PATH"
    )
