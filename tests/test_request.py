"""`smsurgery request`: REST bodies, curl lines and gRPC requests, without the TensorFlow runtime."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.errors import AliasNotFound, InvalidRequest, UnsupportedModel
from smsurgery.serving.grpc_requests import grpc_request, message_text
from smsurgery.serving.request_body import build_request, curl_line, rest_url
from smsurgery.serving.rest import parse_predict
from smsurgery.serving.tf_example import example_features, parse_input_flags
from tests.conftest import FIXTURE_MODELS, REALMODELS, assert_one_line_error, run_cli

HP2 = REALMODELS / "saved_model_half_plus_two_cpu"
HP3 = REALMODELS / "saved_model_half_plus_three"
TFX = REALMODELS / "tfx_trainer_estimator"


def test_request_and_grpc_do_not_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys; from smsurgery.cli.app import main\n"
        "for args in (['request', sys.argv[1]], ['request', sys.argv[1], '-s', 'classify_x_to_y', '--grpc'],\n"
        "             ['request', sys.argv[1], '--grpc', '-o', sys.argv[2]]):\n"
        "    try:\n        main(args)\n    except SystemExit as e:\n        assert not e.code, e.code\n"
        "assert 'tensorflow.python' not in sys.modules, 'tensorflow runtime imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(HP2), str(tmp_path / "req.pb")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_plain_signature_body_and_curl() -> None:
    built = build_request(HP2)
    assert built.method == "predict" and built.format == "row"
    assert list(built.body) == ["signature_name", "instances"]
    assert len(built.body["instances"]) == 1 and isinstance(built.body["instances"][0]["x"][0], float)
    assert rest_url(built) == "http://localhost:8501/v1/models/saved_model_half_plus_two_cpu:predict"
    assert curl_line(built).startswith("curl -X POST http://localhost:8501/v1/models/saved_model_half_plus_two_cpu:")
    assert json.loads(curl_line(built).split(" -d ", 1)[1].strip("'")) == built.body
    columnar = build_request(HP2, fmt="columnar", batch=3)
    assert np.array(columnar.body["inputs"]["x"]).shape == (3, 1)


def test_url_version_only_when_asked() -> None:
    assert build_request(HP2).version is None
    assert build_request(f"{HP2}@123").version == 123
    assert build_request(HP2, version=123).version == 123
    assert build_request(HP2 / "00000123").version == 123
    built = build_request(HP2, version=123, model_name="hp2", method="predict")
    assert rest_url(built, "serving:9000") == "http://serving:9000/v1/models/hp2/versions/123:predict"
    assert rest_url(built, "https://ml.example.com") == "https://ml.example.com:8501/v1/models/hp2/versions/123:predict"
    assert curl_line(built, body_file="b.json").endswith("-d @b.json")


def test_values_json_npy_and_repeated_files(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([[1.5], [2.5]], np.float32))
    (tmp_path / "x.json").write_text("[[7.0]]")
    from_npy = build_request(HP2, specs=parse_input_flags([f"x=@{tmp_path / 'x.npy'}"]))
    assert from_npy.body["instances"] == [{"x": [1.5]}, {"x": [2.5]}]
    from_json = build_request(HP2, fmt="columnar", specs={"x": [f"@{tmp_path / 'x.json'}"]})
    assert from_json.body["inputs"] == {"x": [[7.0]]}
    one = build_request(HP2, values={"x": [3.0]})  # one instance without its batch dimension
    assert one.body["instances"] == [{"x": [3.0]}]
    scalar = build_request(HP3, values={"x": [1.0, 2.0, 5.0]})  # Serving's own example: a batch into a scalar
    assert scalar.body["instances"] == [{"x": 1.0}, {"x": 2.0}, {"x": 5.0}]
    blobs = [bytes(range(256)), b"\xff\xd8\xff\xe0 not really a jpeg"]
    for i, blob in enumerate(blobs):
        (tmp_path / f"f{i}.bin").write_bytes(blob)
    files = [f"words=@{tmp_path / 'f0.bin'}", f"words=@{tmp_path / 'f1.bin'}"]
    words = build_request(FIXTURE_MODELS / "tf1_lookup", specs=parse_input_flags(files))
    assert [base64.b64decode(i["words"]["b64"]) for i in words.body["instances"]] == blobs
    assert parse_predict(words.body, words.lookup).inputs["words"].tolist() == blobs


def test_classify_regress_bodies_use_the_parsed_features() -> None:
    regress = build_request(HP3, signature="tensorflow/serving/regress", batch=2)
    assert regress.method == "regress" and [f.name for f in regress.features] == ["x"]
    assert [set(e) for e in regress.body["examples"]] == [{"x"}, {"x"}]
    classify = build_request(HP2, signature="classify_x_to_y", specs={"x": ["3"]})
    assert classify.body["examples"][0]["x"] == 3.0 and isinstance(classify.body["examples"][0]["x"], float)
    tfx = build_request(TFX, signature="classification")
    kinds = {f.kind for f in tfx.features}
    assert "sparse" in kinds and len(tfx.features) == 17
    # TF2 export: the parse op sits inside a function called by StatefulPartitionedCall.
    meta = build_request(REALMODELS / "saved_model_half_plus_two_tf2_cpu").meta
    names = example_features(meta.proto, meta.signature("classify_x_to_y").inputs[0].name)
    assert [f.name for f in names] == ["x", "x2"]
    fixture = build_request(FIXTURE_MODELS / "tf1_lookup", signature="classify")
    assert len(fixture.body["examples"][0]["x"]) == 3  # FixedLenFeature([3], float)


def test_grpc_requests_match_tensorflow_serving_api() -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2

    built = build_request(HP2, values={"x": [[1.0], [2.0]]}, version=123)
    request = predict_pb2.PredictRequest.FromString(grpc_request(built).SerializeToString())
    assert request.model_spec.name == "saved_model_half_plus_two_cpu" and request.model_spec.version.value == 123
    assert request.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]), np.array([[1.0], [2.0]], np.float32))
    assert "float_val: 2.0" in message_text(grpc_request(built))
    strings = build_request(FIXTURE_MODELS / "tf1_lookup", values={"words": ["a", {"b64": "AP8="}]})
    tensor = predict_pb2.PredictRequest.FromString(grpc_request(strings).SerializeToString()).inputs["words"]
    assert list(tensor.string_val) == [b"a", b"\x00\xff"]  # raw bytes, never base64
    classify = build_request(HP2, signature="classify_x_to_y", batch=2)
    parsed = classification_pb2.ClassificationRequest.FromString(grpc_request(classify).SerializeToString())
    assert len(parsed.input.example_list.examples) == 2
    assert set(parsed.input.example_list.examples[0].features.feature) == {"x", "x2"}


def test_signature_without_inputs_is_grpc_only() -> None:
    counter = REALMODELS / "saved_model_counter"
    with pytest.raises(InvalidRequest, match="Failed to get input map for signature: get_counter"):
        build_request(counter, signature="get_counter")
    built = build_request(counter, signature="get_counter", rest=False)
    assert len(grpc_request(built).inputs) == 0


# ---- bad input: exit 2, one line, the alias and what was expected ----


def test_unknown_alias_lists_the_aliases() -> None:
    assert_one_line_error(run_cli("request", HP2, "-i", "y=[[1.0]]"), "no input", "'y'", "it has: x")
    with pytest.raises(AliasNotFound):
        build_request(HP2, values={"y": 1.0})
    with pytest.raises(AliasNotFound, match=r"parses no tf\.Example feature 'z'"):
        build_request(HP2, signature="classify_x_to_y", values={"z": 1.0})


def test_wrong_dtype_names_alias_and_expected_type() -> None:
    result = run_cli("request", REALMODELS / "tfjs_times_two_int", "-i", "x=[1.5]")
    assert_one_line_error(result, "input 'x'", "DT_INT32", "is not of expected type: int32")
    with pytest.raises(InvalidRequest, match="not a JSON value"):
        build_request(HP2, specs={"x": ["abc"]})


def test_ragged_rows_and_unequal_dimension_0() -> None:
    with pytest.raises(InvalidRequest, match="Encountered list at unexpected size: 1 at level: 1"):
        build_request(FIXTURE_MODELS / "tf1_linear", values={"x": [[1.0, 2.0, 3.0], [4.0]]})
    two = FIXTURE_MODELS / "tf2_module"
    with pytest.raises(InvalidRequest, match="same dimension 0"):
        build_request(two, values={"a": [[1.0, 2.0, 3.0]], "b": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]})
    columnar = build_request(two, fmt="columnar", values={"a": [[1.0, 2.0, 3.0]], "b": [[1.0, 2.0, 3.0]] * 2})
    assert len(columnar.body["inputs"]["b"]) == 2


def test_cli_ragged_rows_and_malformed_b64() -> None:
    ragged = run_cli("request", FIXTURE_MODELS / "tf1_linear", "-i", "x=[[1.0, 2.0, 3.0], [4.0]]")
    assert_one_line_error(ragged, "input 'x'", "DT_FLOAT", "Encountered list at unexpected size: 1")
    bad = run_cli("request", FIXTURE_MODELS / "tf1_lookup", "-i", 'words=[{"b64": "@@"}]')
    assert_one_line_error(bad, "input 'words'", "Unable to base64 decode")


def test_malformed_b64_and_bad_flags() -> None:
    with pytest.raises(InvalidRequest, match="not formatted correctly for base64 data"):
        build_request(FIXTURE_MODELS / "tf1_lookup", fmt="columnar", values={"words": [{"b64": 1}]})
    assert_one_line_error(run_cli("request", HP2, "-i", "x"), "is not ALIAS=VALUE")
    with pytest.raises(UnsupportedModel, match="coo_sparse"):
        build_request(REALMODELS / "tfx_transform_fn")
    with pytest.raises(InvalidRequest, match="call it with --method predict"):
        build_request(HP2, signature="regress_x2_to_y3")
    assert build_request(HP2, signature="regress_x2_to_y3", method="predict").method == "predict"


def test_cli_prints_body_on_stdout_and_curl_on_stderr(tmp_path: Path) -> None:
    result = run_cli("request", f"{HP3}@123", "-i", "x=[1.0,2.0,5.0]")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "signature_name": "serving_default",
        "instances": [{"x": 1.0}, {"x": 2.0}, {"x": 5.0}],
    }
    assert "curl -X POST http://localhost:8501/v1/models/saved_model_half_plus_three/versions/123:predict" in (
        result.stderr
    )
    curl = run_cli("request", HP3, "--curl", "--host", "tfs:8501", "-o", tmp_path / "b.json")
    assert curl.stdout.strip().endswith(f"-d @{tmp_path / 'b.json'}")
    assert json.loads((tmp_path / "b.json").read_text())["instances"]
