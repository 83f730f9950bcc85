"""The pure graph model: one parser, scopes of the main graph and of functions, calls, walks, dtypes."""

from __future__ import annotations

import pytest

from smsurgery.core import protos
from smsurgery.core.errors import InvalidName
from smsurgery.core.graphmodel import GraphModel, Input, TensorRef, parse_address, parse_input
from smsurgery.core.model import read, shape_of
from tests.conftest import FIXTURE_MODELS

KERAS_CALL = "__inference___call___691"
KERAS_WRAPPER = "__inference_signature_wrapper___call___718"


def keras_image() -> GraphModel:
    return GraphModel(read(FIXTURE_MODELS / "keras_image").meta_graph().proto)


@pytest.mark.parametrize(
    ("text", "in_function", "expected"),
    [
        ("a", False, Input("a", 0)),
        ("a/b:2", False, Input("a/b", 2)),
        ("^a", False, Input("a", control=True)),
        ("x", True, Input("x", 0)),
        ("m/Relu:activations:0", True, Input("m/Relu", 0, "activations")),
        ("call:output:3", True, Input("call", 3, "output")),
        ("^n", True, Input("n", control=True)),
    ],
)
def test_one_parser_for_graph_and_function_names(text: str, in_function: bool, expected: Input) -> None:
    assert parse_input(text, in_function=in_function) == expected


@pytest.mark.parametrize(("text", "in_function"), [("a:b:0", False), ("a:1", True), ("", False), ("a b", True)])
def test_parser_refuses_what_is_not_a_name(text: str, in_function: bool) -> None:
    with pytest.raises(InvalidName):
        parse_input(text, in_function=in_function)


def test_addresses_round_trip() -> None:
    inner = TensorRef("F", "m/Mean", 0, "output")
    assert inner.address == "F::m/Mean:output:0"
    assert parse_address(inner.address) == ("F", "m/Mean:output:0")
    assert TensorRef("", "x", 1).address == "x:1" and parse_address("x:1") == ("", "x:1")
    assert TensorRef("F", "image", is_argument=True).address == "F::image"


def test_calls_and_callers_across_main_graph_and_functions() -> None:
    model = keras_image()
    main_calls = {c.node: c.function for c in model.callees("")}
    assert main_calls["StatefulPartitionedCall_1"] == KERAS_WRAPPER
    callers = model.callers(KERAS_CALL)
    assert {c.scope for c in callers} == {KERAS_WRAPPER, "__inference_signature_wrapper___call___705"}
    path = model.call_path(KERAS_WRAPPER, KERAS_CALL)
    assert path is not None and [(c.scope, c.node) for c in path] == [(KERAS_WRAPPER, "StatefulPartitionedCall")]
    reached = model.reachable([c for c in model.callees("") if c.node == "StatefulPartitionedCall_1"])
    assert set(reached) == {KERAS_WRAPPER, KERAS_CALL}


def test_walks_upstream_and_downstream_inside_a_function() -> None:
    model = keras_image()
    up = model.upstream(KERAS_CALL, ["image_classifier_1/pool_1/Mean"])
    assert "image_classifier_1/conv_1/convolution" in up and "image_classifier_1/probs_1/MatMul" not in up
    down = model.downstream(KERAS_CALL, ["image_classifier_1/pool_1/Mean"])
    assert {"image_classifier_1/probs_1/Softmax", "Identity"} <= down
    assert "image_classifier_1/conv_1/Relu" not in down


def test_dtype_and_shape_of_function_tensors_and_arguments() -> None:
    model = keras_image()
    mean = TensorRef(KERAS_CALL, "image_classifier_1/pool_1/Mean", 0, "output")
    assert protos.dtype_name(model.dtype(mean)) == "DT_FLOAT"
    assert shape_of(model.shape(mean)) == (-1, 4)
    image = TensorRef(KERAS_CALL, "image", is_argument=True)
    assert shape_of(model.shape(image)) == (-1, 64, 64, 3)
    refs = {r.address for r in model.refs(KERAS_CALL)}
    assert f"{KERAS_CALL}::image_classifier_1/conv_1/Relu:activations:0" in refs


def _library_with_loop() -> GraphModel:
    meta = protos.meta_graph_class()()
    loop = meta.graph_def.node.add(name="loop", op="While")
    loop.attr["body"].func.name = "body"
    loop.attr["cond"].func.name = "cond"
    apply = meta.graph_def.node.add(name="apply", op="PartitionedCall")
    apply.attr["f"].func.name = "outer"
    for name in ("body", "cond", "outer", "inner"):
        meta.graph_def.library.function.add().signature.name = name
    outer = meta.graph_def.library.function[2]
    outer.signature.attr.add(name="fn", type="func")
    node = outer.node_def.add(name="use", op="PartitionedCall")
    node.attr["f"].placeholder = "fn"
    return GraphModel(meta)


def test_loop_bodies_and_attr_placeholders_are_callees() -> None:
    model = _library_with_loop()
    kinds = {(c.function, c.kind) for c in model.callees("")}
    assert kinds == {("body", "loop"), ("cond", "loop"), ("outer", "call")}
    assert model.calls("outer", "use") == []  # unbound placeholder
    bound = model.calls("outer", "use", {"fn": "inner"})
    assert [c.function for c in bound] == ["inner"]
    assert model.call_path("outer", "body") is None


def test_functions_bound_in_a_name_attr_list_are_callees() -> None:
    meta = protos.meta_graph_class()()
    for name in ("outer", "inner"):
        meta.graph_def.library.function.add().signature.name = name
    apply = meta.graph_def.node.add(name="apply", op="PartitionedCall")
    apply.attr["f"].func.name = "outer"
    apply.attr["f"].func.attr["fn"].func.name = "inner"  # outer's `fn` placeholder, bound at this call
    calls = GraphModel(meta).calls("", "apply")
    assert [(c.function, c.attr) for c in calls] == [("outer", "f"), ("inner", "f.attr.fn")]


def test_lenient_readers_take_any_name_strict_edits_refuse() -> None:
    assert parse_input("a:b:2", in_function=False, lenient=True) == Input("a", 2)
    assert parse_input("x y:z", in_function=True, lenient=True) == Input("x y", 0)
    meta = protos.meta_graph_class()()
    meta.graph_def.node.add(name="a", op="Const")
    meta.graph_def.node.add(name="b", op="Identity", input=["a:odd:0"])
    assert GraphModel(meta, lenient=True).upstream("", ["b"]) == {"a", "b"}
    with pytest.raises(InvalidName):
        GraphModel(meta).upstream("", ["b"])
