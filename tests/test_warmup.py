"""`smsurgery warmup`: TFRecord files of PredictionLog that TensorFlow's own readers read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsurgery.core.errors import InvalidRequest
from smsurgery.graph.run import open_runner
from smsurgery.publishing.target import PublishTarget
from smsurgery.serving.grpc_requests import grpc_request
from smsurgery.serving.request_body import build_request
from smsurgery.serving.warmup import (
    MAX_WARMUP_RECORDS,
    WARMUP_FILE,
    crc32c,
    publish_warmup,
    read_tfrecord,
    tfrecord,
    warmup_bytes,
)
from tests.conftest import FIXTURE_MODELS, REALMODELS, assert_one_line_error, run_cli, tree_digest

HP2 = REALMODELS / "saved_model_half_plus_two_cpu"


def _tf_records(path: Path) -> list[bytes]:
    """Read with TensorFlow's own TFRecord reader (it checks both checksums of every record)."""
    import tensorflow as tf

    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def test_crc32c_and_framing_match_tensorflows_writer(tmp_path: Path) -> None:
    import tensorflow as tf

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    records = [b"", b"a", bytes(range(256)) * 5, b"a"]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert tfrecord(records) == (tmp_path / "tf.tfrecord").read_bytes()
    assert read_tfrecord(tfrecord(records)) == records
    damaged = bytearray(tfrecord(records))
    damaged[20] ^= 1
    with pytest.raises(InvalidRequest, match="corrupted record at"):
        read_tfrecord(bytes(damaged))


def test_predict_warmup_reads_back_and_loads(model_copy) -> None:
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    base = model_copy(HP2)
    before = tree_digest(base / "00000123")
    built = build_request(base, values={"x": [[1.0], [2.0], [3.0]]}, rest=False)
    report = publish_warmup(built, count=3)
    assert (report.version, report.records, report.replaced) == (124, 3, False)
    assert tree_digest(base / "00000123") == before  # the source version is untouched
    records = _tf_records(base / "124" / WARMUP_FILE)
    assert len(records) == 3
    expected = predict_pb2.PredictRequest.FromString(grpc_request(built).SerializeToString())
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        assert log.WhichOneof("log_type") == "predict_log"
        assert log.predict_log.request == expected
    assert list(log.predict_log.request.inputs["x"].float_val) == [1.0, 2.0, 3.0]  # raw values, not base64
    # The new version loads with the TF1 loader, as Serving will, and answers the logged request.
    new = build_request(base / "124", values={"x": [[1.0], [2.0], [3.0]]})
    with open_runner(base / "124") as runner:
        assert runner.run_built(new).data == {"predictions": [[2.5], [3.0], [3.5]]}
    assert (base / "124" / "assets" / "foo.txt").is_file()


def test_classify_and_regress_warmup_logs(model_copy) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    base = model_copy(HP2)
    for signature, kind in (("classify_x_to_y", "classify_log"), ("regress_x_to_y", "regress_log")):
        built = build_request(base, signature=signature, batch=2, rest=False)
        report = publish_warmup(built, count=2)
        records = _tf_records(report.file)
        logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
        assert [log.WhichOneof("log_type") for log in logs] == [kind, kind]
        request = getattr(logs[0], kind).request
        assert request.model_spec.signature_name == signature
        assert request.SerializeToString(deterministic=True) == grpc_request(built).SerializeToString(
            deterministic=True
        )
        examples = request.input.example_list.examples
        assert len(examples) == 2 and set(examples[0].features.feature) == {"x", "x2"}
    assert report.replaced  # the second write started from the first one's version


def test_string_inputs_and_fixture_models(model_copy) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    base = model_copy(FIXTURE_MODELS / "tf1_lookup")
    built = build_request(base, values={"words": [{"b64": "AP8="}, "apple"]}, rest=False)
    report = publish_warmup(built, count=MAX_WARMUP_RECORDS)
    records = _tf_records(report.file)
    assert len(records) == MAX_WARMUP_RECORDS
    tensor = prediction_log_pb2.PredictionLog.FromString(records[-1]).predict_log.request.inputs["words"]
    assert list(tensor.string_val) == [b"\x00\xff", b"apple"]  # raw bytes in string_val, never base64
    with open_runner(report.path) as runner:
        ids = runner.run_built(build_request(report.path, values={"words": ["apple", "date"]})).data
    assert [row["ids"] for row in ids["predictions"]] == [0, 3]


def test_count_limits_and_nothing_written(model_copy) -> None:
    base = model_copy(HP2)
    built = build_request(base, rest=False)
    for count in (0, MAX_WARMUP_RECORDS + 1):
        with pytest.raises(InvalidRequest, match="between 1 and 1000"):
            publish_warmup(built, count=count)
    assert sorted(p.name for p in base.iterdir()) == ["00000123"]
    assert_one_line_error(run_cli("warmup", base, "--count", "1001"), "--count", "1000")
    assert sorted(p.name for p in base.iterdir()) == ["00000123"]
    assert len(warmup_bytes(built, 2)) == 2 * len(warmup_bytes(built, 1))


def test_cli_warmup_checks_the_request_first(model_copy, tmp_path: Path) -> None:
    base = model_copy(HP2)
    result = run_cli("warmup", base, "-s", "regress_x_to_y", "--count", "4", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["version"], report["records"], report["method"]) == (124, 4, "regress")
    assert len(_tf_records(Path(report["file"]))) == 4
    # A request the model refuses would make Serving fail to load the version: refused here, nothing written.
    linear = model_copy(FIXTURE_MODELS / "tf1_linear")
    bad = run_cli("warmup", linear, "-i", "x=[[1.0, 2.0]]", "--out", tmp_path / "out")
    assert_one_line_error(bad, "matrix")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_input_signature_gets_a_warmup_record(model_copy) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    base = model_copy(REALMODELS / "saved_model_counter")
    built = build_request(base, signature="get_counter", rest=False)
    records = _tf_records(publish_warmup(built).file)
    request = prediction_log_pb2.PredictionLog.FromString(records[0]).predict_log.request
    assert request.model_spec.signature_name == "get_counter" and len(request.inputs) == 0


def test_version_option_names_the_new_version_and_at_picks_the_source(model_copy) -> None:
    """Like every writing command: --version N is the version written; PATH@N the one read."""
    base = model_copy(HP2)
    published = publish_warmup(build_request(f"{base}@123", rest=False), target=PublishTarget(version=500))
    assert published.version == 500 and (base / "500" / "assets.extra" / "tf_serving_warmup_requests").is_file()
    taken = run_cli("warmup", f"{base}@123", "--version", "500", "--no-verify")
    assert_one_line_error(taken, "version 500 already exists")
    assert sorted(p.name for p in base.iterdir()) == ["00000123", "500"]
