"""Threading function-internal tensors out, as pure proto edits (no TensorFlow): what is written."""

from __future__ import annotations

import pytest

from smsurgery.core import protos
from smsurgery.core.errors import UnsupportedModel
from smsurgery.core.model import read
from smsurgery.edits import objectgraph
from smsurgery.edits.function_outputs import trace_output
from smsurgery.edits.signatures import add_output, add_signature, repoint
from smsurgery.edits.validate import problems
from tests.conftest import FIXTURE_MODELS

POOL = "__inference___call___691::image_classifier_1/pool_1/Mean:output:0"


def meta_of(name: str):
    saved = protos.SavedModel()
    saved.CopyFrom(read(FIXTURE_MODELS / name).proto)
    return saved.meta_graphs[0]


def functions(meta) -> dict[str, bytes]:
    return {f.signature.name: f.SerializeToString(deterministic=True) for f in meta.graph_def.library.function}


def test_output_add_threads_through_cloned_functions_in_sorted_key_order() -> None:
    meta = meta_of("keras_image")
    before, serve = functions(meta), meta.signature_def["serve"].SerializeToString(deterministic=True)
    report = add_output(meta, "serving_default", "embedding", "layer:pool")
    assert report.changes[0].new == POOL
    assert problems(meta) == []  # both loaders' views agree, every tensor exists
    outputs = meta.signature_def["serving_default"].outputs
    assert outputs["embedding"].name.endswith(":0") and outputs["output_0"].name.endswith(":1")  # sorted keys
    function = objectgraph.signature_function(meta, "serving_default")
    assert sorted(function.outputs) == ["embedding", "output_0"]
    trace = trace_output(meta, "serving_default", "embedding")
    assert trace is not None and trace.node == "image_classifier_1/pool_1/Mean"
    assert trace.function.startswith("__inference___call___691_smsurgery")  # Keras' shared __call__ cloned
    after = functions(meta)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {function.name}  # only serving_default's own wrapper changed in place
    assert meta.signature_def["serve"].SerializeToString(deterministic=True) == serve


def test_second_output_reuses_the_private_copies() -> None:
    meta = meta_of("keras_image")
    add_output(meta, "serving_default", "embedding", POOL)
    count = len(meta.graph_def.library.function)
    add_output(meta, "serving_default", "features", "conv_1/Relu")
    assert len(meta.graph_def.library.function) == count
    assert problems(meta) == []
    assert trace_output(meta, "serving_default", "features").node == "image_classifier_1/conv_1/Relu"


def test_signature_add_copies_the_base_and_keeps_a_named_base_output() -> None:
    meta = meta_of("keras_image")
    probs = meta.signature_def["serving_default"].outputs["output_0"].name
    add_signature(meta, "embed", {"picture": "serving_default_image:0"}, {"embedding": POOL, "probs": probs})
    assert problems(meta) == []
    signature = meta.signature_def["embed"]
    assert sorted(signature.inputs) == ["picture"] and sorted(signature.outputs) == ["embedding", "probs"]
    children = objectgraph.signature_children(meta)
    assert children["embed"].node_id != children["serving_default"].node_id
    assert trace_output(meta, "embed", "probs").node == "Identity"
    assert trace_output(meta, "embed", "embedding").node == "image_classifier_1/pool_1/Mean"


def test_repoint_output_drops_the_old_result() -> None:
    meta = meta_of("tf2_module")
    wrapper = objectgraph.signature_function(meta, "serving_default")
    results = len(wrapper.function_def.signature.output_arg)
    repoint(meta, "serving_default", sorted(meta.signature_def["serving_default"].outputs)[0], "MatMul")
    assert problems(meta) == []
    wrapper = objectgraph.signature_function(meta, "serving_default")
    assert len(wrapper.function_def.signature.output_arg) == results


def test_main_graph_tensor_of_a_tf2_export_is_refused_with_the_way_out() -> None:
    meta = meta_of("keras_image")
    with pytest.raises(UnsupportedModel, match="drop-object-graph"):
        add_output(meta, "serving_default", "x", "serving_default_image:0")


def test_validate_catches_a_call_that_expects_other_results() -> None:
    meta = meta_of("keras_image")
    add_output(meta, "serving_default", "embedding", POOL)
    trace = trace_output(meta, "serving_default", "embedding")
    wrapper = objectgraph.function_def(meta, trace.wrapper)
    call = next(n for n in wrapper.node_def if n.name == trace.calls[0])
    del call.attr["Tout"].list.type[-1]
    assert any("expects other results" in p.text for p in problems(meta))
