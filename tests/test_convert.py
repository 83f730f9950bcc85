"""`smsurgery convert`: every source format becomes a SavedModel that both loaders run identically.

Reference outputs come from TensorFlow directly (the frozen graph imported by
hand, the Keras model called by hand), never from smsurgery's own code.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from smsurgery import describe
from smsurgery.core.errors import InvalidEdit, PublishError, VerificationFailed
from smsurgery.graph.convert import TensorsNeeded, convert, list_candidates
from smsurgery.graph.session import load_session, load_tf2, run_tf2
from smsurgery.publishing.atomic import STAGING_PREFIX
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURES, assert_one_line_error, run_cli

SOURCES = FIXTURES / "sources"
X3 = np.array([[0.1, -0.2, 0.3], [1.0, 0.5, -1.5], [0.0, 0.0, 0.0]], dtype=np.float32)
X4 = np.array([[0.1, -0.2, 0.3, 0.4], [1.0, 0.5, -1.5, 2.0]], dtype=np.float32)


def _frozen_reference(x: np.ndarray) -> np.ndarray:
    """output:0 of the frozen fixture graph, imported by hand."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString((SOURCES / "frozen.pb").read_bytes())
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run("output:0", {"input:0": x})


def _keras_reference(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.saving.load_model(path, compile=False)(x, training=False))


def _both_loaders(version_dir: Path, key: str, feeds: dict[str, np.ndarray]) -> tuple[dict, dict]:
    with load_session(version_dir, ("serve",)) as session:
        assert session.signature_keys() == [key]
        tf1 = session.run(key, feeds)
    loaded = load_tf2(version_dir)
    assert sorted(loaded.signatures) == [key]
    return tf1, run_tf2(loaded, key, feeds)


def _assert_clean(base: Path, versions: list[str]) -> None:
    """Only the expected version folders; no staging folder left behind."""
    names = sorted(p.name for p in base.iterdir())
    assert names == versions, names
    assert not any(n.startswith(STAGING_PREFIX) for n in names)


@pytest.mark.parametrize("given", ["ckpt/model.ckpt", "ckpt/model.ckpt.meta", "ckpt"])
def test_checkpoint_converts_by_prefix_meta_or_folder(tmp_path: Path, given: str) -> None:
    base = tmp_path / "models" / "linear"  # does not exist yet: created
    report = convert(SOURCES / given, base, inputs=["x=input"], outputs=["y=output:0"])
    assert report.format.kind == "checkpoint" and report.version == 1 and report.path == base / "1"
    assert report.verification is not None and report.verification.max_abs_diff <= 1e-6
    signature = report.signature
    assert [(t.alias, t.dtype, t.shape, t.name) for t in signature.inputs] == [("x", "DT_FLOAT", (-1, 3), "input:0")]
    assert [(t.alias, t.dtype, t.shape, t.name) for t in signature.outputs] == [("y", "DT_FLOAT", (-1, 2), "output:0")]
    tf1, tf2 = _both_loaders(report.path, "serving_default", {"x": X3})
    expected = _frozen_reference(X3)
    np.testing.assert_allclose(tf1["y"], expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(tf2["y"], expected, atol=1e-6, rtol=0)
    _assert_clean(base, ["1"])
    assert describe(base)["variables"]["count"] == 4  # the checkpoint's four variables, restored


@pytest.mark.parametrize("name", ["frozen.pb", "frozen.pbtxt"])
def test_frozen_graph_converts_binary_and_text(tmp_path: Path, name: str) -> None:
    base = tmp_path / "frozen"
    report = convert(SOURCES / name, base, inputs=["features=input:0"], outputs=["scores=output"])
    assert report.format.kind == ("frozen_graph" if name.endswith(".pb") else "frozen_graph_text")
    assert report.verification is not None and report.verification.max_abs_diff <= 1e-6
    tf1, tf2 = _both_loaders(report.path, "serving_default", {"features": X3})
    expected = _frozen_reference(X3)
    np.testing.assert_allclose(tf1["scores"], expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(tf2["scores"], expected, atol=1e-6, rtol=0)
    assert describe(base)["variables"]["count"] == 0
    _assert_clean(base, ["1"])


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_keras_converts_with_the_models_own_names(tmp_path: Path, name: str) -> None:
    base = tmp_path / "mlp"
    report = convert(SOURCES / name, base)
    assert report.format.kind == ("keras_v3" if name.endswith(".keras") else "keras_h5")
    assert [t.alias for t in report.signature.inputs] == ["features"]
    assert [t.alias for t in report.signature.outputs] == ["probs"]  # the layer's name, not output_0
    assert report.verification is not None and report.verification.max_abs_diff <= 1e-6
    tf1, tf2 = _both_loaders(report.path, "serving_default", {"features": X4})
    expected = _keras_reference(SOURCES / name, X4)
    np.testing.assert_allclose(tf1["probs"], expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(tf2["probs"], expected, atol=1e-6, rtol=0)
    shown = describe(base)
    assert list(shown["signatures"]) == ["serving_default"]
    assert shown["signatures"]["serving_default"]["outputs"]["probs"]["shape"] == [-1, 2]


def test_keras_dict_outputs_and_two_inputs_keep_their_names(tmp_path: Path) -> None:
    """Dict outputs are keyed by the dict keys; several inputs by their keras.Input names."""
    import keras

    keras.utils.set_random_seed(7)
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b", dtype="int32")
    mixed = keras.layers.Concatenate()([a, keras.layers.Dense(3, name="embed")(keras.ops.cast(b, "float32"))])
    model = keras.Model(
        [a, b], {"zscore": keras.layers.Dense(2, name="z")(mixed), "alpha": keras.layers.Dense(1)(mixed)}
    )
    source = tmp_path / "two.keras"
    model.save(source)
    report = convert(source, tmp_path / "two", signature="predict_both")
    assert [t.alias for t in report.signature.inputs] == ["a", "b"]
    assert [t.alias for t in report.signature.outputs] == ["alpha", "zscore"]
    feeds = {"a": X3, "b": np.array([[1, 2], [3, 4], [0, 1]], dtype=np.int32)}
    tf1, tf2 = _both_loaders(report.path, "predict_both", feeds)
    expected = model([feeds["a"], feeds["b"]], training=False)
    for alias in ("alpha", "zscore"):
        np.testing.assert_allclose(tf1[alias], np.asarray(expected[alias]), atol=1e-6, rtol=0)
        np.testing.assert_allclose(tf2[alias], np.asarray(expected[alias]), atol=1e-6, rtol=0)


def test_versions_signature_key_and_method(tmp_path: Path) -> None:
    base = tmp_path / "m"
    convert(SOURCES / "frozen.pb", base, inputs=["x=input"], outputs=["y=output"])
    second = convert(SOURCES / "frozen.pb", base, inputs=["x=input"], outputs=["y=output"], signature="scores")
    assert second.version == 2 and list(describe(base)["signatures"]) == ["scores"]
    fifth = convert(
        SOURCES / "frozen.pb", base, inputs=["input"], outputs=["output"], target=PublishTarget(version=5, verify=False)
    )
    assert fifth.version == 5 and fifth.verification is None
    assert [t.alias for t in fifth.signature.inputs] == ["input"]  # a bare tensor name is its own alias
    with pytest.raises(PublishError, match="version 5 already exists"):
        convert(SOURCES / "frozen.pb", base, inputs=["x=input"], outputs=["y=output"], target=PublishTarget(version=5))
    with pytest.raises(InvalidEdit, match="classify takes input 'inputs'"):
        convert(SOURCES / "frozen.pb", base, inputs=["x=input"], outputs=["y=output"], method="classify")
    _assert_clean(base, ["1", "2", "5"])


def test_without_tensors_the_candidates_are_listed(tmp_path: Path) -> None:
    found = list_candidates(SOURCES / "ckpt")
    assert [(c.name, c.op, c.dtype, c.shape) for c in found.inputs] == [("input:0", "Placeholder", "DT_FLOAT", (-1, 3))]
    assert [(c.name, c.op, c.shape) for c in found.outputs] == [("output:0", "Identity", (-1, 2))]
    with pytest.raises(TensorsNeeded, match="--outputs") as caught:
        convert(SOURCES / "frozen.pbtxt", tmp_path / "none", inputs=["x=input"])
    assert [c.name for c in caught.value.candidates.outputs] == ["output:0"]
    assert not (tmp_path / "none").exists()
    keras_found = list_candidates(SOURCES / "model.keras")
    assert [c.name for c in keras_found.inputs] == ["features"] and [c.name for c in keras_found.outputs] == ["probs"]


def test_cli_lists_candidates_on_stdout_and_exits_2(tmp_path: Path) -> None:
    result = run_cli("convert", SOURCES / "ckpt/model.ckpt", tmp_path / "base")
    assert_one_line_error(result, "--inputs", "--outputs", "input:0", "output:0")
    assert "input:0" in result.stdout and "Placeholder" in result.stdout and "output:0" in result.stdout
    assert not (tmp_path / "base").exists()


def test_cli_converts_and_prints_json(tmp_path: Path) -> None:
    base = tmp_path / "served"
    result = run_cli("convert", SOURCES / "model.h5", base, "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "smsurgery.convert/1" and report["format"] == "keras_h5"
    assert report["version"] == 1 and Path(report["path"]) == base / "1"
    assert report["signature"]["key"] == "serving_default"
    assert list(report["signature"]["inputs"]) == ["features"] and list(report["signature"]["outputs"]) == ["probs"]
    assert report["verification"]["verified"] is True and report["verification"]["max_abs_diff"] <= 1e-6
    _assert_clean(base, ["1"])


def test_cli_tolerances_reach_the_verification(tmp_path: Path) -> None:
    base = tmp_path / "served"
    result = run_cli("convert", SOURCES / "model.h5", base, "--rtol", "0", "--atol", "0.5", "--json")
    assert result.code == 0, result.stderr
    verification = json.loads(result.stdout)["verification"]
    assert (verification["rtol"], verification["atol"]) == (0.0, 0.5)
    assert_one_line_error(run_cli("convert", SOURCES / "model.h5", tmp_path / "bad", "--rtol", "-1"), "--rtol", "-1")
    assert not (tmp_path / "bad").exists()


def _two_input_frozen_graph(path: Path) -> None:
    """out = a + b: converting with only `a` as input leaves `b` unfed."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        a = tf.compat.v1.placeholder(tf.float32, [None, 2], name="a")
        b = tf.compat.v1.placeholder(tf.float32, [None, 2], name="b")
        tf.identity(a + b, name="out")
    tf.io.write_graph(graph.as_graph_def(), str(path.parent), path.name, as_text=False)


def test_failed_verification_publishes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "sum.pb"
    _two_input_frozen_graph(source)
    base = tmp_path / "sum"
    with pytest.raises(VerificationFailed, match="does not run on generated inputs"):
        convert(source, base, inputs=["a=a"], outputs=["out=out"])
    assert not base.exists()  # created for the attempt, removed again
    base.mkdir()
    with pytest.raises(VerificationFailed):
        convert(source, base, inputs=["a=a"], outputs=["out=out"])
    _assert_clean(base, [])
    assert convert(source, base, inputs=["a=a", "b=b"], outputs=["out"]).verification is not None


def test_a_copied_checkpoint_folder_with_absolute_paths_still_converts(tmp_path: Path) -> None:
    """A `checkpoint` file written elsewhere names absolute paths; the files next to it are used."""
    folder = tmp_path / "ckpt"
    shutil.copytree(SOURCES / "ckpt", folder)
    (folder / "checkpoint").write_text(
        'model_checkpoint_path: "/elsewhere/train/model.ckpt"\n'
        'all_model_checkpoint_paths: "/elsewhere/train/model.ckpt"\n'
    )
    report = convert(folder, tmp_path / "out", inputs=["x=input"], outputs=["y=output"])
    assert report.format.prefix == folder / "model.ckpt"
    assert os.path.isdir(report.path / "variables")


def test_frozen_graph_pinned_to_a_gpu_converts_on_a_cpu_machine(tmp_path: Path) -> None:
    """A graph frozen on a GPU machine keeps its device pins; the CPU-only convert must still run it."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default(), tf.device("/device:GPU:0"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        tf.identity(x * 3.0 + 1.0, name="y")
    pinned = tmp_path / "pinned.pb"
    pinned.write_bytes(graph.as_graph_def().SerializeToString())
    assert any(node.device for node in graph.as_graph_def().node)
    report = convert(pinned, tmp_path / "base", inputs=["x=x"], outputs=["y=y"])
    assert report.verification is not None and report.verification.max_abs_diff == 0.0
    with load_session(report.path, ["serve"]) as session:
        out = session.run("serving_default", {"x": np.array([[1.0, 2.0]], np.float32)})
    np.testing.assert_allclose(out["y"], [[4.0, 7.0]])
