"""`smsurgery convert` on bad input: one clear line, exit status 2, nothing written in BASE.

Most cases run the CLI entry point in this process (`main(argv)`, the same
code the console script runs) to keep the suite fast; two run as real
processes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from smsurgery.cli.app import main
from smsurgery.core.errors import (
    InvalidEdit,
    PathNotFound,
    PublishError,
    TensorNotFound,
    UnsupportedModel,
)
from smsurgery.graph.convert import convert
from tests.conftest import FIXTURE_MODELS, FIXTURES, CliResult, assert_one_line_error, run_cli, tree_digest

SOURCES = FIXTURES / "sources"


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> CliResult:
    """The console script's entry point, in this process."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """An existing model base with one version, to check that failures leave it as it was."""
    target = tmp_path / "models" / "m"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear", target)
    return target


def _unchanged(base: Path, before: dict[str, str]) -> None:
    assert tree_digest(base) == before
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # no version 2, no staging folder


def test_unknown_formats_are_named(tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(base)
    cases = {
        "notes.txt": (b"just some notes\n", ["text file", "not a TensorFlow proto"]),
        "model.tflite": (b"\x1c\x00\x00\x00TFL3" + bytes(64), ["TensorFlow Lite"]),
        "model.onnx": (b"\x08\x07\x12\x04test\x3a\x02\x0a\x00", ["ONNX"]),
        "blob.bin": (bytes(range(256)) * 4, ["unrecognised binary"]),
        "model.json": (json.dumps({"format": "graph-model", "modelTopology": {}}).encode(), ["TensorFlow.js"]),
        "archive.zip": (None, ["zip archive", "not a Keras v3 file"]),
    }
    for name, (data, words) in cases.items():
        path = tmp_path / name
        if data is None:
            shutil.make_archive(str(path.with_suffix("")), "zip", SOURCES / "ckpt")
        else:
            path.write_bytes(data)
        result = _cli(capsys, "convert", path, base)
        assert_one_line_error(result, "convert reads", *words)
    result = _cli(capsys, "convert", FIXTURE_MODELS / "tf1_linear", base)
    assert_one_line_error(result, "SavedModel", "nothing to convert")
    _unchanged(base, before)


def test_unknown_format_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01\x02garbage" * 50)
    result = run_cli("convert", path, tmp_path / "new_base")
    assert_one_line_error(result, "weights.bin", "unrecognised binary file", "convert reads")
    assert not (tmp_path / "new_base").exists()


def test_unknown_tensor_names_suggest_close_ones(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(base)
    result = _cli(capsys, "convert", SOURCES / "frozen.pb", base, "--inputs", "x=inptu", "--outputs", "y=output")
    assert_one_line_error(result, "no input tensor 'inptu'", "close names: input:0")
    result = _cli(capsys, "convert", SOURCES / "ckpt", base, "--inputs", "x=input", "--outputs", "y=output:3")
    assert_one_line_error(result, "op 'output'", "no tensor 'output:3'", "it has: output:0")
    with pytest.raises(TensorNotFound, match="output candidates: output:0"):
        convert(SOURCES / "frozen.pbtxt", base, inputs=["x=input"], outputs=["y=zzzzzz"])
    _unchanged(base, before)


def test_checkpoint_with_missing_files(tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(base)
    folder = tmp_path / "ckpt"
    shutil.copytree(SOURCES / "ckpt", folder)
    (folder / "model.ckpt.data-00000-of-00001").unlink()
    result = run_cli("convert", folder, base, "--inputs", "x=input", "--outputs", "y=output")
    assert_one_line_error(result, "incomplete", "missing model.ckpt.data-00000-of-00001")
    (folder / "model.ckpt.index").unlink()
    with pytest.raises(PathNotFound, match=r"missing model\.ckpt\.index"):
        convert(folder / "model.ckpt", base, inputs=["x=input"], outputs=["y=output"])
    shutil.copytree(SOURCES / "ckpt", tmp_path / "nometa")
    (tmp_path / "nometa" / "model.ckpt.meta").unlink()
    result = _cli(capsys, "convert", tmp_path / "nometa" / "model.ckpt", base, "--inputs", "x=input")
    assert_one_line_error(result, "no meta graph", "model.ckpt.meta is missing")
    _unchanged(base, before)


def test_tf2_object_checkpoint_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(tmp_path / "tf2" / "ckpt"))
    result = _cli(capsys, "convert", prefix, tmp_path / "out")
    assert_one_line_error(result, "TF2 object-based checkpoint", "no .meta graph")
    assert not (tmp_path / "out").exists()


def test_unreadable_h5_names_the_way_out(tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An old .h5 whose layers Keras 3 does not know, and an HDF5 file with weights only."""
    import h5py

    before = tree_digest(base)
    legacy = tmp_path / "legacy.h5"
    shutil.copy(SOURCES / "model.h5", legacy)
    with h5py.File(legacy, "r+") as handle:  # as if written by tf.keras 2 with a layer Keras 3 lacks
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = "LegacyDense"
        handle.attrs["model_config"] = json.dumps(config)
    result = _cli(capsys, "convert", legacy, base)
    assert_one_line_error(result, "Keras 3 cannot read", "Unknown layer: 'LegacyDense'", "pip install tf-keras")
    weights = tmp_path / "weights_only.h5"
    with h5py.File(weights, "w") as handle:
        handle.create_dataset("dense/kernel", data=np.ones((4, 2), dtype=np.float32))
    result = _cli(capsys, "convert", weights, base)
    assert_one_line_error(result, "Keras 3 cannot read", "no model config", "weights only", "load_weights")
    _unchanged(base, before)


def test_keras_rejects_graph_options(base: Path) -> None:
    before = tree_digest(base)
    with pytest.raises(InvalidEdit, match=r"do not apply to Keras files.*inputs features, outputs probs"):
        convert(SOURCES / "model.keras", base, inputs=["x=features"], outputs=["y=probs"])
    with pytest.raises(InvalidEdit, match="predict signature under tag set"):
        convert(SOURCES / "model.keras", base, method="classify")
    _unchanged(base, before)


def test_a_graph_with_variables_is_not_a_frozen_graph(tmp_path: Path, base: Path) -> None:
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        tf.identity(x * tf.compat.v1.Variable([1.0, 2.0], name="w"), name="y")
    tf.io.write_graph(graph.as_graph_def(), str(tmp_path), "unfrozen.pb", as_text=False)
    with pytest.raises(UnsupportedModel, match=r"not frozen.*freeze the graph first"):
        convert(tmp_path / "unfrozen.pb", base, inputs=["x"], outputs=["y"])


def test_bad_targets(tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_digest(base)
    args = ("--inputs", "x=input", "--outputs", "y=output")
    result = _cli(capsys, "convert", SOURCES / "frozen.pb", base / "1", *args)
    assert_one_line_error(result, "is a version folder", "not a model base")
    result = _cli(capsys, "convert", SOURCES / "frozen.pb", base, "--version", "1", *args)
    assert_one_line_error(result, "version 1 already exists", "next free version is 2")
    result = _cli(capsys, "convert", SOURCES / "frozen.pb", base, "--method", "explain", *args)
    assert_one_line_error(result, "unknown method 'explain'", "predict, classify, regress")
    result = _cli(capsys, "convert", SOURCES / "frozen.pb", base, "--inputs", "x=input,x=output", "--outputs", "y")
    assert_one_line_error(result, "two inputs share an alias")
    with pytest.raises(PublishError, match="is a file"):
        convert(SOURCES / "frozen.pb", SOURCES / "frozen.pbtxt", inputs=["input"], outputs=["output"])
    result = _cli(capsys, "convert", tmp_path / "no_such_source.pb", base)
    assert_one_line_error(result, "no such file or folder")
    _unchanged(base, before)
