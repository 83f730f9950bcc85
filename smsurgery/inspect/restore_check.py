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

from smsurgery.core.names import node_of
from smsurgery.edits import objectgraph

INIT_OP_SIGNATURE = objectgraph.INIT_OP_SIGNATURE


def unrestored_variables(meta: Any) -> dict[str, list[str]]:
    """Signature key -> variables it reads that the TF1 loader neither restores nor initializes.

    The TF1 loader restores a TF2 export by running the saver's restore call,
    which assigns the variable handles fed the checkpoint's file name; the
    init op may fill others. Any other handle a signature reaches is never
    filled in a session.
    """
    if not objectgraph.has_object_graph(meta) or not meta.saver_def.filename_tensor_name:
        return {}
    from smsurgery.core.graphmodel import MAIN, GraphModel  # here: a TF1 export never needs the graph model

    model = GraphModel(meta, lenient=True)
    nodes = model.main.nodes
    handles = {
        n.name: n.attr["shared_name"].s.decode(errors="replace") or n.name
        for n in nodes.values()
        if n.op == "VarHandleOp"
    }
    filename = node_of(meta.saver_def.filename_tensor_name)
    ready: set[str] = set()
    for node in nodes.values():
        if any(node_of(i) == filename for i in node.input):
            ready |= {handles[node_of(i)] for i in node.input if node_of(i) in handles}
    if not ready:
        return {}
    init = meta.signature_def.get(INIT_OP_SIGNATURE, None)
    init_roots = [info.name for info in init.outputs.values()] if init is not None else []
    ready |= {handles[n] for n in model.upstream(MAIN, map(node_of, init_roots)) if n in handles}
    found: dict[str, list[str]] = {}
    for key in sorted(meta.signature_def):
        if key == INIT_OP_SIGNATURE:
            continue
        roots = [info.name for info in meta.signature_def[key].outputs.values() if info.name]
        missing = sorted({handles[n] for n in model.upstream(MAIN, map(node_of, roots)) if n in handles} - ready)
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
