"""An independent check of exposed function-internal tensors: the source, inlined by TensorFlow, fetched by name.

Edit verification proves that old outputs come out identical; a new or
repointed output has nothing old to compare with. For those that end in a
function (threaded out by `function_outputs`), this module evaluates the
same tensor from the *source* version by a route that shares nothing with
the threading: `tf.saved_model.load` of the source, the source signature's
concrete function frozen with `convert_variables_to_constants_v2` (which
has Grappler inline every call), and the inlined node fetched in a TF1
session by the name TensorFlow gives it (`call/call/node:i`). The new
version's value (TF1 loader, the way Serving runs it) must match to
rtol 1e-5, atol 1e-6.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core.errors import SmsurgeryError, VerificationFailed
from smsurgery.core.graphmodel import node_of, parse_input
from smsurgery.core.model import INIT_OP_SIGNATURE, read
from smsurgery.edits.function_outputs import Trace, root_name, trace_output
from smsurgery.graph.session import first_line, import_tf, load_session, load_tf2, session_for
from smsurgery.publishing.comparison import compare_arrays
from smsurgery.serving.samples import sample_inputs

BATCH, SEED = 2, 0


def check_exposed(
    source: Path, staging: Path, tags: tuple[str, ...], pairs: list[Any], new_tags: tuple[str, ...] | None = None
) -> list[str]:
    """Notes, one per checked output; VerificationFailed when an exposed value differs from the source's.

    `new_tags`: the staged version's tag set, when the edit retagged the meta graph.
    """
    new_tags = tags if new_tags is None else new_tags
    new_meta = read(staging).meta_graph(new_tags)
    source_meta = read(source).meta_graph(tags).proto
    jobs = []
    for pair in pairs:
        for alias, origin in sorted(pair.outputs.items()):
            if origin is not None:
                continue
            trace = trace_output(new_meta.proto, pair.new, alias)
            if trace is None or not trace.calls:
                continue
            source_key = pair.old if pair.old is not None else _source_key(source_meta, trace)
            if source_key is not None:
                jobs.append((pair, alias, trace, source_key))
    if not jobs:
        return []
    try:
        loaded = load_tf2(source, tags)
    except SmsurgeryError as error:
        return [f"exposed outputs not checked independently: {first_line(error)}"]
    notes = []
    for pair, alias, trace, source_key in jobs:
        feeds = sample_inputs(new_meta.signature(pair.new), batch=BATCH, seed=SEED)
        try:
            with load_session(staging, new_tags) as session:
                got = session.run(pair.new, feeds, outputs=[alias])[alias]
            want = _inlined_value(loaded, source_key, trace, _source_feeds(pair, feeds, source_meta, source_key))
        except SmsurgeryError as error:
            notes.append(f"output '{alias}' of '{pair.new}' not checked independently: {first_line(error)}")
            continue
        if want is None:
            notes.append(f"output '{alias}' of '{pair.new}': TensorFlow's inlining of the source renamed "
                         f"{trace.inlined_name}; not checked independently")  # fmt: skip
            continue
        if not compare_arrays(want, got):
            raise VerificationFailed(
                f"output '{alias}' of '{pair.new}' differs from {trace.node} of the source computed with its "
                "functions inlined; nothing was published"
            )
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size and got.dtype.kind in "fiu" else 0.0
        notes.append(
            f"output '{alias}' of '{pair.new}' equals {trace.node} of the source run with its functions inlined "
            f"(max abs diff {diff:.3g})"
        )
    return notes


def _source_key(meta: Any, trace: Trace) -> str | None:
    """The source signature whose wrapper the new signature's wrapper was copied from."""
    for key, signature in sorted(meta.signature_def.items()):
        if key == INIT_OP_SIGNATURE:
            continue
        names = {parse_input(info.name, in_function=False).node for info in signature.outputs.values() if info.name}
        for node in meta.graph_def.node:
            if node.name in names and "f" in node.attr and node.attr["f"].func.name == root_name(trace.wrapper):
                return key
    return None


def _source_feeds(pair: Any, feeds: dict[str, np.ndarray], meta: Any, key: str) -> dict[str, np.ndarray]:
    """New aliases -> the source signature's aliases (renamed inputs by lineage, else by sorted position)."""
    source_aliases = sorted(meta.signature_def[key].inputs)
    mapped = {pair.inputs.get(a) or a: v for a, v in feeds.items()}
    if set(mapped) == set(source_aliases):
        return mapped
    return dict(zip(source_aliases, [feeds[a] for a in sorted(feeds)], strict=False))


def _inlined_value(loaded: Any, key: str, trace: Trace, feeds: dict[str, np.ndarray]) -> np.ndarray | None:
    tf = import_tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = loaded.signatures[key]
    try:
        frozen = convert_variables_to_constants_v2(function, lower_control_flow=False)
    except Exception as error:  # TensorFlow raises many kinds here
        message = f"cannot inline the source's signature '{key}' to check it: {first_line(error)}"
        raise SmsurgeryError(message) from error
    graph_def = frozen.graph.as_graph_def()
    if node_of(trace.inlined_name) not in {node.name for node in graph_def.node}:
        return None
    aliases = sorted(function.structured_input_signature[1])
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    feed = {tensor.name: feeds[alias] for alias, tensor in zip(aliases, frozen.inputs, strict=False)}
    with session_for(graph) as session:
        return np.asarray(session.run(trace.inlined_name, feed))
