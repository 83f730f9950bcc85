"""`example-input`: Serving's Classify and Regress APIs for models that take only tensors.

On the real half_plus_two (TF1) the new regress and classify signatures
answer the same REST bodies exactly as the model's own tf.Example
signatures do (Serving's conventions: one input `inputs`, outputs `scores`
/ `outputs`, the method name); a Keras 3 export (function route, object
graph kept) answers a `:classify` body through `run`; a TF2 module with two
inputs answers `:regress` with the original outputs under both loaders;
`warmup` and `request` work on the results; a missing required feature
gives TensorFlow's own message; bad requests exit 2 and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import keras
import numpy as np
import pytest

from smsurgery import read
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from tests.conftest import REALMODELS, REPO, assert_one_line_error, run_cli, tree_digest

pytestmark = pytest.mark.slow
SCHEMA = json.loads((REPO / "docs" / "schemas" / "example-input.json").read_text())
tf = import_tf()
HALF_PLUS_TWO = REALMODELS / "saved_model_half_plus_two_cpu"


def example(**features: list[float]) -> bytes:
    proto = tf.train.Example()
    for name, values in features.items():
        proto.features.feature[name].float_list.value.extend(values)
    return proto.SerializeToString()


def run_body(version: Path, body: dict, tmp_path: Path, *extra: str) -> dict:
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    result = run_cli("run", version, "-b", path, *extra)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(not HALF_PLUS_TWO.is_dir(), reason="shared/realmodels not present")
def test_half_plus_two_answers_like_its_own_tf_example_signatures(model_copy, tmp_path: Path) -> None:
    base = model_copy(HALF_PLUS_TWO)
    source = tree_digest(base)
    result = run_cli("example-input", base, "--method", "regress", "--as", "regress_mine", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["schema"] == "smsurgery.example-input/1" and report["route"] == "session"
    assert report["features"] == [
        {
            "name": "x",
            "alias": "x",
            "dtype": "float32",
            "input_dtype": "float32",
            "shape": [1],
            "var_len": False,
            "image": False,
        }
    ]
    assert run_cli("example-input", base, "--method", "classify", "--as", "classify_mine").code == 0
    version = base / str(report["version"] + 1)
    view = read(version).meta_graph()
    assert view.signature("regress_mine").method_name == "tensorflow/serving/regress"
    assert view.signature("classify_mine").method_name == "tensorflow/serving/classify"
    body = {"examples": [{"x": 2.0}, {"x": -3.0}, {"x": 10.5}]}
    for theirs, ours in (("regress_x_to_y", "regress_mine"), ("classify_x_to_y", "classify_mine")):
        want = run_body(version, {"signature_name": theirs, **body}, tmp_path)
        got = run_body(version, {"signature_name": ours, **body}, tmp_path)
        assert got == want and len(want["results"]) == 3, (got, want)
    assert run_body(version, {"signature_name": "regress_mine", **body}, tmp_path)["results"] == [3.0, 0.5, 7.25]
    assert tree_digest(base) != source and tree_digest(base / "00000123") == tree_digest(HALF_PLUS_TWO / "00000123")


def keras_classifier(path: Path) -> None:
    keras.utils.set_random_seed(11)
    inputs = keras.Input((4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.export(str(path / "1"), format="tf_saved_model", verbose=False)


def test_keras_classifier_answers_a_rest_classify_body(tmp_path: Path) -> None:
    base = tmp_path / "keras_classifier"
    keras_classifier(base)
    result = run_cli("example-input", base, "--method", "classify", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["route"] == "function"
    jsonschema.validate(json.loads(result.stdout), SCHEMA)
    meta = read(base / "2").meta_graph()
    assert meta.kind == "tf2" and "serve" in meta.signature_keys()  # object graph and Keras' endpoint kept
    assert meta.signature("classify").output("scores").shape == (-1, 3)
    rows = [[0.5, -1.0, 2.0, 0.25], [3.0, 0.0, -0.5, 1.0]]
    body = {"signature_name": "classify", "examples": [{"features": row} for row in rows]}
    answer = run_body(base / "2", body, tmp_path)
    with load_session(base / "1", ("serve",)) as old:
        want = old.run("serving_default", {"features": np.array(rows, np.float32)})["output_0"]
    assert [[label for label, _ in row] for row in answer["results"]] == [["", "", ""]] * 2
    got = np.array([[score for _, score in row] for row in answer["results"]])
    assert np.allclose(got, want, rtol=1e-6)
    serialized = np.array([example(features=row) for row in rows], dtype=object)
    assert np.allclose(run_tf2(load_tf2(base / "2"), "classify", {"inputs": serialized})["scores"], want, rtol=1e-6)
    warm = run_cli("warmup", base / "2", "-s", "classify", "--method", "classify")
    assert warm.code == 0, warm.stderr
    assert (base / "3" / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_tf2_module_with_two_inputs_answers_regress_under_both_loaders(model_copy, tmp_path: Path) -> None:
    base = model_copy("tf2_module")
    result = run_cli("example-input", base, "--method", "regress", "--output", "score")
    assert result.code == 0, result.stderr
    a = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    b = [[0.5, 0.5, 0.5], [2.0, 1.0, 0.0]]
    serialized = np.array([example(a=x, b=y) for x, y in zip(a, b, strict=True)], dtype=object)
    feeds = {"a": np.array(a, np.float32), "b": np.array(b, np.float32)}
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as new:
        want = old.run("serving_default", feeds)["score"]
        assert np.array_equal(new.run("regress", {"inputs": serialized})["outputs"], want)
    assert np.array_equal(run_tf2(load_tf2(base / "2"), "regress", {"inputs": serialized})["outputs"], want)
    body = {"signature_name": "regress", "examples": [{"a": x, "b": y} for x, y in zip(a, b, strict=True)]}
    assert np.allclose(run_body(base / "2", body, tmp_path)["results"], want, rtol=1e-6)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"signature_name": "regress", "examples": [{"a": a[0]}]}))
    failed = run_cli("run", base / "2", "-b", missing)
    assert failed.code != 0 and "Feature: b (data type: float) is required but could not be found" in failed.stderr


def test_predict_method_and_spec_file_on_tf1(model_copy, tmp_path: Path) -> None:
    base = model_copy("tf1_linear")
    spec = tmp_path / "spec.toml"
    spec.write_text('[features.x]\nname = "measurements"\ndtype = "float"\nshape = [3]\n')
    result = run_cli("example-input", base, "-s", "prediction", "--spec", spec, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["features"][0]["name"] == "measurements"
    jsonschema.validate(json.loads(result.stdout), SCHEMA)
    x = [[1.0, 2.0, 3.0]]
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as new:
        want = old.run("prediction", {"x": np.array(x, np.float32)})["y"]
        got = new.run("predict_examples", {"inputs": np.array([example(measurements=x[0])], dtype=object)})["y"]
    assert np.array_equal(got, want)
    request = run_cli("request", base / "2", "-s", "predict_examples")
    assert request.code == 0, request.stderr


@pytest.mark.parametrize(
    ("fixture", "args", "words"),
    [
        ("tf2_module", ("--method", "classify"), ("has 2 outputs", "--output")),
        ("tf2_module", ("--method", "sort"), ("unknown method 'sort'",)),
        ("tf2_module", ("--method", "classify", "--output", "score"), ("classify scores are [batch, classes]",)),
        ("tf2_module", ("--method", "regress", "--output", "output", "--as", "double"), ("'double' already exists",)),
        ("tf2_module", ("--spec", "SPEC"), ("does not cover input(s) b", "it covers: a")),
        ("tf1_lookup", ("--spec", "missing.json"), ("no feature spec file",)),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(model_copy, tmp_path: Path, fixture, args, words) -> None:
    base = model_copy(fixture, "bad-" + "-".join(a.strip("-") for a in args))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"a": {"dtype": "float", "shape": [3]}}))
    args = tuple(str(spec) if a == "SPEC" else str(tmp_path / a) if a.endswith(".json") else a for a in args)
    before = tree_digest(base)
    assert_one_line_error(run_cli("example-input", base, *args), *words)
    assert tree_digest(base) == before


def test_image_feature_decodes_with_image_input_preset(model_copy, tmp_path: Path) -> None:
    """`image/encoded` bytes inside a tf.Example decode with `--preset resnet50`, as image-input does."""
    import base64

    from tests.conftest import FIXTURES
    from tests.test_image_input_presets import keras_reference

    base = model_copy("keras_image")
    args = ("--image-feature", "image/encoded", "--preset", "resnet50", "--json")
    result = run_cli("example-input", base, *args)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["features"][0]["image"] is True
    jpeg = (FIXTURES / "images" / "sample.jpg").read_bytes()
    proto = tf.train.Example()
    proto.features.feature["image/encoded"].bytes_list.value.append(jpeg)
    serialized = np.array([proto.SerializeToString()], dtype=object)
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as new:
        want = old.run("serving_default", {"image": keras_reference("resnet50", jpeg, 64, 64)})["output_0"]
        assert np.allclose(new.run("predict_examples", {"inputs": serialized})["output_0"], want, rtol=1e-5)
    got = run_tf2(load_tf2(base / "2"), "predict_examples", {"inputs": serialized})["output_0"]
    assert np.allclose(got, want, rtol=1e-5)
    body = {"signature_name": "predict_examples", "instances": [{"b64": base64.b64encode(serialized[0]).decode()}]}
    answer = run_body(base / "2", body, tmp_path)
    assert np.allclose(answer["predictions"], want, rtol=1e-5)
