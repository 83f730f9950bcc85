"""`smsurgery run`: REST bodies answered through the TF1 loader, as TensorFlow Serving answers them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery import read
from smsurgery.core.errors import InvalidRequest, SmsurgeryError
from smsurgery.graph.run import Runner, open_runner, plan_body, run_body
from smsurgery.serving.grpc_requests import predict_arrays
from smsurgery.serving.request_body import BuiltRequest, build_request
from tests.conftest import (
    FIXTURE_MODELS,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
)

HP3 = REALMODELS / "saved_model_half_plus_three"
HP2 = REALMODELS / "saved_model_half_plus_two_cpu"

# Models no request can reach: no loader for custom ops; sparse inputs (Serving feeds dense tensors only).
UNREACHABLE = {"tfdf_adult_rf_custom_ops", "tfx_transform_fn"}
# Signatures whose state changes when run, so a second run gives another answer.
STATEFUL = {("rust_regression_savedmodel", "train"), ("saved_model_counter", "incr_counter_by")}
# Answers that Serving itself refuses, with its words.
SERVING_REFUSES = {
    ("saved_model_half_plus_two_mkl", "regress_x_to_y2"): "[batch_size] or [batch_size, 1] but got [1,10,10,1]",
    ("saved_model_counter", "incr_counter_by"): "Parameters and update must be the same size",
}


# ---- the examples of TensorFlow Serving's REST API documentation (g3doc/api_rest.md) ----


@pytest.fixture(scope="module")
def half_plus_three():
    with open_runner(HP3) as runner:
        yield runner


def test_documented_predict_examples(half_plus_three: Runner) -> None:
    row = half_plus_three.run('{"instances": [1.0, 2.0, 5.0]}')
    assert row.data == {"predictions": [3.5, 4.0, 5.5]}
    assert row.format == "row" and row.signature == "serving_default"
    columnar = half_plus_three.run('{"inputs": [1.0,2.0,5.0]}')
    assert columnar.data == {"outputs": [3.5, 4.0, 5.5]}
    assert half_plus_three.run({"instances": [{"x": 1.0}, {"x": 2.0}]}).data == {"predictions": [3.5, 4.0]}


def test_documented_regress_example(half_plus_three: Runner) -> None:
    body = '{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}'
    result = half_plus_three.run(body)
    assert result.method == "regress" and result.data == {"results": [3.5, 4.0]}
    with pytest.raises(InvalidRequest, match=r"Expected classification signature method_name to be .*Was: "):
        half_plus_three.run(body, method="classify")


def test_documented_b64_example(half_plus_three: Runner) -> None:
    body = {
        "signature_name": "classify_objects",
        "examples": [
            {"image": {"b64": "aW1hZ2UgYnl0ZXM="}, "caption": "seaside"},
            {"image": {"b64": "YXdlc29tZSBpbWFnZSBieXRlcw=="}, "caption": "mountains"},
        ],
    }
    plan_error = "No signature was found with the name: classify_objects"
    with pytest.raises(InvalidRequest, match=plan_error):
        half_plus_three.run(body, method="classify")
    plan = plan_body(half_plus_three.meta, {**body, "signature_name": "tensorflow/serving/regress"}, method="regress")
    images = [list(e.features.feature["image"].bytes_list.value) for e in plan.examples.examples]
    assert images == [[b"image bytes"], [b"awesome image bytes"]]
    for example, x in zip(body["examples"], (1.0, 2.0), strict=True):
        example["x"] = x  # the feature half_plus_three parses; the others are ignored, as by Serving
    body["signature_name"] = "tensorflow/serving/regress"
    assert half_plus_three.run(body, method="regress").data == {"results": [3.5, 4.0]}


def test_serving_does_not_check_declared_shapes(half_plus_three: Runner) -> None:
    # x is declared a scalar and its placeholder (None, 1): Serving's C++ run feeds [3] anyway.
    assert half_plus_three.run({"inputs": [[1.0], [3.0]]}).data == {"outputs": [[3.5], [4.5]]}


# ---- a generated body for each fixture and real model gives the signature's outputs ----


def _models() -> list[Path]:
    names = [REALMODELS / n for n in real_model_names()] + [FIXTURE_MODELS / n for n in fixture_model_names()]
    return [p for p in names if p.name not in UNREACHABLE]


def _request(model, key: str, fmt: str) -> BuiltRequest | None:
    signature = model.meta_graph().signature(key)
    if not signature.inputs:
        return None
    try:
        return build_request(model, signature=key, fmt=fmt)
    except InvalidRequest as error:
        assert "call it with --method predict" in str(error)  # a classify/regress signature on floats
        return build_request(model, signature=key, fmt=fmt, method="predict")


def _close(got: object, expected: np.ndarray) -> None:
    expected = np.asarray(expected)
    if expected.dtype.kind in "OSU":
        assert np.asarray(got).ravel().tolist() == [v.decode() for v in expected.ravel()]
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64).ravel(), expected.ravel(), rtol=1e-6, atol=1e-6)


def _check_model(path: Path) -> int:
    model = read(path)
    checked = 0
    with open_runner(model) as runner:
        for key in model.meta_graph().signature_keys():
            built = _request(model, key, "columnar")
            if built is None:
                continue
            try:
                result = runner.run_built(built)
            except InvalidRequest as error:
                assert SERVING_REFUSES.get((path.name, key), "\0") in str(error), (path.name, key, str(error))
                continue
            if (path.name, key) in STATEFUL:
                continue
            if built.method == "predict":
                arrays = predict_arrays(built)
                if (path.name, key) == ("saved_model_half_plus_three", "serving_default"):
                    # Python's Session.run refuses x's declared shape (None, 1) for a scalar; Serving does not.
                    expected = {"y": arrays["x"] * 0.5 + 3.0}
                else:
                    expected = runner.session.run(key, arrays)  # Python Session.run, by alias
                got = result.data["outputs"]
                got = got if len(expected) > 1 else {next(iter(expected)): got}
                for alias, value in expected.items():
                    _close(got[alias], value)
            else:
                serialized = np.array(plan_examples(built), dtype=object)
                expected = runner.session.run(key, {"inputs": serialized})
                results = result.data["results"]
                values = [[c[1] for c in row] for row in results] if built.method == "classify" else results
                _close(values, expected["scores" if built.method == "classify" else "outputs"])
            checked += 1
    return checked


def plan_examples(built: BuiltRequest) -> list[bytes]:
    from smsurgery.serving.grpc_requests import examples_call

    return examples_call(built).serialized()


def test_generated_bodies_run_on_every_model() -> None:
    checked = {path.name: _check_model(path) for path in _models()}
    assert checked["tfx_trainer_estimator"] == 4 and checked["saved_model_half_plus_two_cpu"] == 5
    assert checked["tf2_module"] == 2 and checked["tfjs_int64_multiply"] == 1
    assert sum(checked.values()) >= 60


def test_row_and_columnar_bodies_give_the_same_result() -> None:
    cases = [
        (FIXTURE_MODELS / "tf2_module", {"a": [[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], "b": [[1.0, 0.0, 1.0], [2.0, 2, 2]]}),
        (FIXTURE_MODELS / "tf1_image", None),
        (REALMODELS / "tfjs_model_single_input_multi_output", {"x": [3, 4]}),
        (REALMODELS / "tfjs_int64_multiply", {"x": [2, 5]}),
    ]
    for path, values in cases:
        with open_runner(path) as runner:
            row = runner.run_built(build_request(path, values=values, batch=2)).data["predictions"]
            columnar = runner.run_built(build_request(path, values=values, batch=2, fmt="columnar")).data["outputs"]
        if isinstance(columnar, dict):
            row = {alias: [item[alias] for item in row] for alias in columnar}
        assert row == columnar, path.name


def test_b64_strings_reach_the_model_byte_for_byte() -> None:
    vocab = (FIXTURE_MODELS / "tf1_lookup" / "1" / "assets" / "vocab.txt").read_text().split()
    body = {"inputs": {"words": [{"b64": base64.b64encode(w.encode()).decode()} for w in vocab] + ["apple "]}}
    ids = run_body(FIXTURE_MODELS / "tf1_lookup", body).data["outputs"]["ids"]
    assert ids == [0, 1, 2, 3, 4, -1]


def test_signature_without_inputs_runs_as_grpc_would() -> None:
    counter = REALMODELS / "saved_model_counter"
    with open_runner(counter) as runner:
        first = runner.run_built(build_request(counter, signature="incr_counter", rest=False)).data
        second = runner.run_built(build_request(counter, signature="incr_counter", rest=False)).data
    assert first == {"predictions": [1.0]} and second == {"predictions": [2.0]}


# ---- wrong bodies: Serving's words, exit 2, one line (before TensorFlow is loaded) ----


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"instances": [1.0], "inputs": [1.0]}', ["expecting only one of 'inputs' or 'instances' keys to exist"]),
        ('{"instances": [[1.0, 2.0], [3.0]]}', ["Failed to process element: 1", "Expecting tensor size: 2"]),
        ('{"instances": ["one"]}', ['JSON Value: "one" Type: String is not of expected type: float']),
        ('{"inputs": {"x": [1.0]}, "signature_name": "nope"}', ['Serving signature name: "nope" not found']),
    ],
)
def test_wrong_bodies_in_servings_words(tmp_path: Path, body: str, words: list[str]) -> None:
    (tmp_path / "body.json").write_text(body)
    assert_one_line_error(run_cli("run", HP3, "--body", tmp_path / "body.json"), *words)


def test_cli_malformed_b64(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text('{"inputs": {"words": [{"b64": 5}]}}')
    result = run_cli("run", FIXTURE_MODELS / "tf1_lookup", "--body", tmp_path / "body.json")
    assert_one_line_error(result, 'JSON Value: {"b64": 5} not formatted correctly for base64 data')


def test_malformed_b64_and_runtime_errors() -> None:
    lookup = FIXTURE_MODELS / "tf1_lookup"
    with pytest.raises(InvalidRequest, match="not formatted correctly for base64 data"):
        run_body(lookup, {"inputs": {"words": [{"b64": 5}]}})
    with pytest.raises(InvalidRequest, match="Unable to base64 decode"):
        run_body(lookup, {"instances": [{"words": {"b64": "@@@"}}]})
    with pytest.raises(SmsurgeryError, match="the body names signature"):
        run_body(HP3, {"signature_name": "a", "inputs": [1.0]}, signature="serving_default")
    # A well-formed body the graph refuses: TensorFlow's own message, as Serving returns it.
    with pytest.raises(InvalidRequest, match=r"(?i)matrix|incompatible|shape"):
        run_body(FIXTURE_MODELS / "keras_mlp", {"inputs": {"features": [[1.0, 2.0]]}})


def test_cli_run_answers_like_serving(tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text('{"instances": [1.0, 2.0, 5.0]}')
    result = run_cli("run", HP3, "--body", tmp_path / "body.json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": [3.5, 4.0, 5.5]}
    samples = run_cli("run", HP2, "-s", "regress_x_to_y", "-i", "x=[4.0]", "--batch", "2")
    assert samples.code == 0, samples.stderr
    assert json.loads(samples.stdout)["results"][0] == 4.0


def _image_bytes_model(base: Path) -> Path:
    """A TF1 export with an `image_bytes` input (PNG/JPEG) and an `echo_bytes` output: Serving's b64 convention."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        images = v1.placeholder(tf.string, [None], name="image_bytes")
        decoded = tf.map_fn(
            lambda b: tf.reduce_mean(
                tf.image.convert_image_dtype(tf.io.decode_image(b, 3, expand_animations=False), tf.float32)
            ),
            images,
            fn_output_signature=tf.float32,
        )
        echo = tf.identity(images, name="echo")
        builder = v1.saved_model.Builder(str(base / "1"))
        signature = v1.saved_model.predict_signature_def(
            inputs={"image_bytes": images}, outputs={"mean": decoded, "echo_bytes": echo}
        )
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()
    return base


def test_bytes_image_signature_round_trips_bytes(tmp_path: Path) -> None:
    base = _image_bytes_model(tmp_path / "images")
    built = build_request(base, batch=2)  # samples: tiny PNGs, sent as {"b64": ...}
    assert all(set(item["image_bytes"]) == {"b64"} for item in built.body["instances"])
    with open_runner(base) as runner:
        result = runner.run_built(built).data["predictions"]
        sent = [base64.b64decode(item["image_bytes"]["b64"]) for item in built.body["instances"]]
        assert [base64.b64decode(row["echo_bytes"]["b64"]) for row in result] == sent
        assert all(0.0 <= row["mean"] <= 1.0 for row in result)
        png = tmp_path / "one.png"
        png.write_bytes(sent[0])
        one = build_request(base, specs={"image_bytes": [f"@{png}"]}, fmt="columnar")
        assert one.body["inputs"] == {"image_bytes": [{"b64": base64.b64encode(sent[0]).decode()}]}
        assert runner.run_built(one).data["outputs"]["echo_bytes"] == [one.body["inputs"]["image_bytes"][0]]
