"""`check --load` with real TensorFlow: it agrees with the TF1 session loader (Serving's way)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from smsurgery.core import protos
from smsurgery.core.layout import resolve
from smsurgery.inspect.check import check
from smsurgery.serving.warmup import tfrecord
from tests.conftest import REALMODELS, REPO, real_model_names, run_cli
from tests.test_check import SCHEMA, _write_warmup, edit_pb

pytestmark = pytest.mark.slow


def tf1_loader_loads(path: Path) -> bool:
    import tensorflow as tf

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        try:
            tf.compat.v1.saved_model.loader.load(session, ["serve"], str(resolve(path).version_dir))
        except Exception:
            return False
    return True


@pytest.mark.parametrize("name", real_model_names())
def test_load_agrees_with_the_tf1_loader(name: str) -> None:
    report = check(REALMODELS / name, load=True)
    jsonschema.validate(report.to_json(), SCHEMA)
    assert report.loaded == tf1_loader_loads(REALMODELS / name)
    failures = [f for f in report.findings if f.code.startswith("SM-LOAD")]
    if report.loaded:
        # The MKL export declares regress output (1,10,10,1): Serving's regressor rejects it.
        expected = {"signature 'regress_x_to_y2'"} if name == "saved_model_half_plus_two_mkl" else set()
        assert {f.subject for f in failures} == expected, [f.to_json() for f in failures]
    else:
        assert [f.code for f in failures] == ["SM-LOAD-FAILED"]


def test_load_failure_carries_tensorflows_message() -> None:
    result = run_cli("check", REALMODELS / "tfdf_adult_rf_custom_ops", "--load", "--json")
    data = json.loads(result.stdout)
    assert result.code == 3 and data["loaded"] is False
    item = next(f for f in data["findings"] if f["code"] == "SM-LOAD-FAILED")
    assert "Op type not registered 'SimpleMLCreateModelResource'" in item["message"]


def test_warmup_replay_and_signature_failures(model_copy) -> None:
    base = model_copy("tf1_linear")

    def unfed(sm: Any) -> None:
        graph = sm.meta_graphs[0].graph_def
        extra = graph.node.add(name="extra_input", op="Placeholder")
        extra.attr["dtype"].type = protos.dtype_numbers()["DT_FLOAT"]
        add = graph.node.add(name="needs_extra", op="AddV2", input=["extra_input", "extra_input"])
        add.attr["T"].type = protos.dtype_numbers()["DT_FLOAT"]
        signature = sm.meta_graphs[0].signature_def["prediction"]
        signature.outputs["z"].CopyFrom(next(iter(signature.outputs.values())))
        signature.outputs["z"].name = "needs_extra:0"

    edit_pb(base, unfed)
    report = check(base, load=True)
    item = next(f for f in report.findings if f.code == "SM-LOAD-SIGNATURE-FAILED")
    assert "extra_input" in item.message and report.loaded is True

    half = model_copy(REALMODELS / "saved_model_half_plus_two_cpu")
    log = protos.message_class("tensorflow_serving/apis/prediction_log.proto", "tensorflow.serving.PredictionLog")()
    request = log.predict_log.request
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].dtype = protos.dtype_numbers()["DT_STRING"]  # strings for a float input
    request.inputs["x"].tensor_shape.dim.add(size=1)
    request.inputs["x"].string_val.append(b"one")
    _write_warmup(half, tfrecord([log.SerializeToString()]))
    report = check(half, load=True)
    item = next(f for f in report.findings if f.code == "SM-LOAD-WARMUP-FAILED")
    assert "record 0" in item.subject
    assert run_cli("check", REPO / "fixtures" / "models" / "tf2_module", "--load").code == 0


def test_keras_saved_with_tf_saved_model_save(tmp_path: Path) -> None:
    """Keras 3 + tf.saved_model.save: tf.saved_model.load runs it, the TF1 loader (Serving) cannot."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(3)(inputs)))
    tf.saved_model.save(model, str(tmp_path / "m" / "1"))
    item = next(f for f in check(tmp_path / "m").findings if f.code == "SM-TF1-UNRESTORED")
    assert (
        "bn/beta" in item.message
    )  # named: Keras numbers unnamed layers per process and item.fix.startswith("smsurgery reexport")
    loaded = check(tmp_path / "m", load=True)
    failure = next(f for f in loaded.findings if f.code == "SM-LOAD-SIGNATURE-FAILED")
    assert "Could not find variable" in failure.message
    model.export(str(tmp_path / "exported" / "1"), verbose=False)
    assert "SM-TF1-UNRESTORED" not in {f.code for f in check(tmp_path / "exported").findings}
