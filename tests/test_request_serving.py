"""TensorFlow Serving's REST rules, ported in serving.py/examples.py: pure checks, no TensorFlow runtime.

The expected messages are Serving's own, from tensorflow_serving/util/json_tensor.cc.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import SignatureView, TensorView
from smsurgery.serving.responses import classify_response, predict_response, regress_response
from smsurgery.serving.rest import (
    COLUMNAR,
    ROW,
    b64_decode,
    check_predict,
    decimal_text,
    json_to_array,
    loads,
    parse_predict,
)
from smsurgery.serving.tf_example import make_example, parse_examples


def _signature(inputs: dict[str, str], key: str = "serving_default", method: str = "predict") -> SignatureView:
    views = tuple(TensorView(alias, dtype, (-1,), f"{alias}:0") for alias, dtype in sorted(inputs.items()))
    outputs = (TensorView("y", "DT_FLOAT", (-1,), "y:0"),)
    return SignatureView(key, f"tensorflow/serving/{method}", views, outputs)


def _lookup(*signatures: SignatureView):
    table = {s.key: s for s in signatures}
    return table.get


ONE = _lookup(_signature({"x": "DT_FLOAT"}))
TWO = _lookup(_signature({"a": "DT_FLOAT", "b": "DT_STRING"}))


def _error(call, *words: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    return str(caught.value)


# ---- leaves: dtypes as Serving converts them ----


def test_integers_floats_and_special_values() -> None:
    assert json_to_array([1, 2.5], "DT_FLOAT").tolist() == [1.0, 2.5]  # a JSON integer is a number
    assert json_to_array([[1, 2]], "DT_INT64").dtype == np.int64
    values = json_to_array(loads('{"v": [NaN, Infinity, -Infinity]}')["v"], "DT_FLOAT")
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    _error(lambda: json_to_array([1.0], "DT_INT32"), "JSON Value: 1.0 Type: Number is not of expected type: int32")
    _error(lambda: json_to_array(["1"], "DT_FLOAT"), 'JSON Value: "1" Type: String is not of expected type: float')
    _error(lambda: json_to_array([True], "DT_FLOAT"), "Type: True is not of expected type: float")
    _error(lambda: json_to_array([1], "DT_BOOL"), "is not of expected type: bool")
    _error(
        lambda: json_to_array([16777217], "DT_FLOAT"),
        "Cannot convert JSON value: 16777217 to float without loss of precision.",
    )
    assert json_to_array([16777215], "DT_FLOAT")[0] == 16777215
    assert json_to_array([2**40], "DT_DOUBLE")[0] == 2**40
    _error(lambda: json_to_array([2**31], "DT_INT32"), "is not of expected type: int32")
    assert json_to_array([300], "DT_UINT8")[0] == 44  # int_val wraps as in Tensor::FromProto
    _error(lambda: json_to_array([-1], "DT_UINT32"), "uint32")
    _error(lambda: json_to_array([1.0], "DT_HALF"), "Conversion of JSON Value: 1.0 to type: half")


def test_nesting_levels_and_ragged_lists() -> None:
    assert json_to_array([[1, 2], [3, 4]], "DT_INT32").shape == (2, 2)
    assert json_to_array([], "DT_FLOAT").shape == (0,)
    assert json_to_array(5, "DT_FLOAT").shape == ()
    _error(
        lambda: json_to_array([[1, 2], [3]], "DT_INT32"),
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
    )
    _error(
        lambda: json_to_array([1, [2]], "DT_INT32"),
        "Encountered list at unexpected level: 1 expected < 1",
    )
    _error(
        lambda: json_to_array([[1], 2], "DT_INT32"),
        "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
    )


def test_b64_objects() -> None:
    assert b64_decode({"b64": "aW1hZ2UgYnl0ZXM="}) == b"image bytes"
    assert b64_decode({"b64": "aW1hZ2UgYnl0ZXM"}) == b"image bytes"  # padding optional, as in absl
    _error(lambda: b64_decode({"b64": "a-_b"}), "Unable to base64 decode")  # the web-safe alphabet is refused
    _error(lambda: b64_decode({"b64": "abcde"}), "Unable to base64 decode")
    _error(lambda: b64_decode({"b64": 12}), "not formatted correctly for base64 data")
    _error(lambda: b64_decode({"b64": "YQ==", "x": 1}), "not formatted correctly for base64 data")
    strings = json_to_array([{"b64": "AAE="}, "text"], "DT_STRING")
    assert strings.tolist() == [b"\x00\x01", b"text"]
    _error(lambda: json_to_array([{"b64": "AAE="}], "DT_FLOAT"), "Type: Object is not of expected type: float")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=5))
def test_b64_bytes_round_trip_exactly(blobs: list[bytes]) -> None:
    body = {"instances": [{"a": 1.0, "b": {"b64": base64.b64encode(blob).decode()}} for blob in blobs]}
    arrays = parse_predict(json.loads(json.dumps(body)), TWO).inputs
    assert arrays["b"].tolist() == blobs
    response = predict_response({"image_bytes": arrays["b"]}, ROW).data
    assert [base64.b64decode(item["b64"]) for item in response["predictions"]] == blobs


# ---- predict bodies ----


def test_row_and_columnar_give_the_same_tensors() -> None:
    row = parse_predict({"instances": [{"a": [1.0, 2.0], "b": "p"}, {"a": [3.0, 4.0], "b": "q"}]}, TWO)
    columnar = parse_predict({"inputs": {"a": [[1.0, 2.0], [3.0, 4.0]], "b": ["p", "q"]}}, TWO)
    assert (row.format, columnar.format) == (ROW, COLUMNAR)
    for alias in ("a", "b"):
        assert row.inputs[alias].tolist() == columnar.inputs[alias].tolist()
    assert parse_predict({"instances": [1.0, 2.0, 5.0]}, ONE).inputs["x"].shape == (3,)
    assert parse_predict({"inputs": 3.0}, ONE).inputs["x"].shape == ()
    assert parse_predict({"inputs": {"x": [1.0], "ignored": 1}}, ONE).inputs["x"].shape == (1,)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"instances": [1.0], "inputs": [1.0]}, ["Not formatted correctly expecting only one of 'inputs' or"]),
        ({"signature_name": 3, "inputs": [1.0]}, ["'signature_name' key must be a string value."]),
        ({"nothing": 1}, ["Missing 'inputs' or 'instances' key"]),
        ({"instances": 1.0}, ["Excepting 'instances' to be an list/array"]),
        ({"instances": []}, ["No values in 'instances' array"]),
        ({"inputs": {"y": [1.0]}}, ["Missing named input: x in 'inputs' object."]),
        ({"signature_name": "nope", "inputs": [1.0]}, ['Serving signature name: "nope" not found in signature def']),
        (
            {"instances": [[1.0, 2.0], [3.0]]},
            ["Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2"],
        ),
        (
            {"instances": [[[1.0, 2.0]], [[3.0], [4.0]]]},
            ["Failed to process element: 1", "Expecting shape [1,2] but got: [2,1]"],
        ),
        ({"instances": [{"x": 1.0}, 2.0]}, ["Expecting object but got list at item 1 of input list"]),
        ({"instances": [2.0, {"x": 1.0}]}, ["Expecting value/list but got object at item 1 of input list"]),
        ({"instances": [{"z": 1.0}]}, ["key: z of 'instances' list", "does not have named input: z"]),
    ],
)
def test_predict_body_errors_in_servings_words(body: dict, words: list[str]) -> None:
    _error(lambda: parse_predict(body, ONE), *words)


def test_several_inputs_need_objects() -> None:
    _error(lambda: parse_predict({"instances": [1.0]}, TWO), "instances is a plain list, but expecting list of objects")
    _error(lambda: parse_predict({"inputs": [1.0]}, TWO), "inputs is a plain value/list, but expecting an object")
    _error(
        lambda: parse_predict({"instances": [{"a": 1.0}]}, TWO),
        "Failed to process element: 0 of 'instances' list. JSON object: {\"a\": 1.0} keys must be equal to: a,b",
    )


def test_json_text_errors_and_signatures_without_inputs() -> None:
    _error(lambda: loads(""), "JSON Parse error: The document is empty")
    _error(lambda: loads("{"), "JSON Parse error:")
    _error(lambda: loads("[1]"), "JSON Value: [1] Is not object")
    empty = SignatureView("get", "tensorflow/serving/predict", (), ())
    _error(lambda: parse_predict({"signature_name": "get", "inputs": {}}, _lookup(empty)), "Failed to get input map")
    odd = SignatureView("k", "custom/method", _signature({"x": "DT_FLOAT"}).inputs, ())
    _error(lambda: check_predict(odd, {"x": np.zeros(1)}), "Was: custom/method")
    _error(
        lambda: check_predict(_signature({"x": "DT_FLOAT"}), {"x": np.zeros(1), "z": np.zeros(1)}),
        "input size does not match signature: 2!=1",
        "Sent extra: {z}",
    )


# ---- responses ----


def test_decimal_text_matches_servings_writer() -> None:
    assert decimal_text(4.0, single=True) == "4.0"
    assert decimal_text(3.5, single=True) == "3.5"
    assert decimal_text(float(np.float32(0.1)), single=True) == "0.1"
    assert decimal_text(0.1, single=False) == "0.1"
    assert decimal_text(9000000.0, single=True) == "9e+06"
    assert decimal_text(float(np.float32(1 / 3)), single=True) == "0.333333343"
    assert [decimal_text(v, single=True) for v in (math.nan, math.inf, -math.inf)] == ["NaN", "Infinity", "-Infinity"]


@settings(max_examples=200, deadline=None)
@given(st.floats(width=32, allow_nan=False))
def test_float32_outputs_read_back_exactly(value: float) -> None:
    assert np.float32(float(decimal_text(value, single=True))) == np.float32(value)


def test_predict_response_shapes() -> None:
    y = np.array([3.5, 4.0, 5.5], np.float32)
    assert predict_response({"y": y}, ROW).data == {"predictions": [3.5, 4.0, 5.5]}
    assert predict_response({"y": y}, COLUMNAR).data == {"outputs": [3.5, 4.0, 5.5]}
    two = predict_response({"a": np.array([[1], [2]], np.int64), "b": np.array([b"p", b"q"], object)}, ROW).data
    assert two == {"predictions": [{"a": [1], "b": "p"}, {"a": [2], "b": "q"}]}
    _error(lambda: predict_response({"s": np.float32(2.0)}, ROW), "Tensor name: s has no shape information")
    _error(
        lambda: predict_response({"a": np.zeros(2), "b": np.zeros(3)}, ROW),
        "Tensor name: b has inconsistent batch size: 3 expecting: 2",
    )
    assert predict_response({"s": np.float32(2.0)}, COLUMNAR).data == {"outputs": 2.0}
    text = predict_response({"v": np.array([math.nan], np.float32)}, COLUMNAR).text
    assert "NaN" in text


# ---- classify / regress ----


def test_examples_become_tf_examples() -> None:
    call = parse_examples(
        {"context": {"shared": [1, 2]}, "examples": [{"x": 1.0, "s": "a", "b": {"b64": "AAE="}, "t": True}]}
    )
    example = call.examples[0].features.feature
    assert list(example["x"].float_list.value) == [1.0]
    assert list(example["s"].bytes_list.value) == [b"a"]
    assert list(example["b"].bytes_list.value) == [b"\x00\x01"]
    assert list(example["t"].int64_list.value) == [1]
    merged = type(call.examples[0]).FromString(call.serialized()[0])
    assert set(merged.features.feature) == {"shared", "x", "s", "b", "t"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"nothing": []}, ["When method is classify, key 'examples' is expected and was not found"]),
        ({"examples": {}}, ["Expecting 'examples' value to be an list/array"]),
        ({"examples": []}, ["'examples' value is an empty array"]),
        ({"examples": [1]}, ["Example must be JSON object but got JSON Number"]),
        ({"examples": [{"x": [1, 2.5]}]}, ["Unexpected element type in feature: x expecting type: int64"]),
        ({"examples": [{"x": None}]}, ["Feature: x has element with unexpected JSON type: Null"]),
        ({"examples": [{"x": [[1]]}]}, ["Feature: x has element with unexpected JSON type: Array"]),
        ({"examples": [{"x": 2**63}]}, ["Feature: x has uint64 element. Only int64 is supported."]),
        ({"examples": [{"x": {"b64": "?"}}]}, ["Unable to base64 decode"]),
    ],
)
def test_examples_errors_in_servings_words(body: dict, words: list[str]) -> None:
    _error(lambda: parse_examples(body), *words)


def test_classify_and_regress_results() -> None:
    classes = np.array([[b"a", b"b"]], object)
    scores = np.array([[0.25, 0.75]], np.float32)
    assert classify_response(classes, scores, 1).data == {"results": [[["a", 0.25], ["b", 0.75]]]}
    assert classify_response(None, scores, 1).data == {"results": [[["", 0.25], ["", 0.75]]]}
    _error(lambda: classify_response(None, np.zeros(2, np.float32), 2), "Expected Tensor shape: [batch_size")
    assert regress_response(np.array([[3.5], [4.0]], np.float32), 2).data == {"results": [3.5, 4.0]}
    _error(lambda: regress_response(np.zeros((1, 2), np.float32), 1), "[batch_size] or [batch_size, 1] but got [1,2]")
    _error(lambda: regress_response(np.zeros(3, np.float32), 2), "Input batch size did not match output batch size")
    assert make_example({}).SerializeToString() == b""
