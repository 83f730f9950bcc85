"""Format detection (`smsurgery.core.formats.detect`): what a file is, from its bytes, without TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from smsurgery.core.errors import PathNotFound
from smsurgery.core.formats import checkpoint_parts, detect
from tests.conftest import FIXTURE_MODELS, FIXTURES, REALMODELS, REPO

SOURCES = FIXTURES / "sources"


@pytest.mark.parametrize(
    ("given", "kind", "words"),
    [
        ("ckpt", "checkpoint", "TF1 checkpoint (V2, model.ckpt: .meta, .index, 1 data file)"),
        ("ckpt/model.ckpt", "checkpoint", "V2"),
        ("ckpt/model.ckpt.meta", "checkpoint", "V2"),
        ("ckpt/model.ckpt.index", "checkpoint", "V2"),
        ("ckpt/model.ckpt.data-00000-of-00001", "checkpoint", "V2"),
        ("ckpt/checkpoint", "checkpoint", "V2"),
        ("frozen.pb", "frozen_graph", "frozen GraphDef (binary, 15 nodes)"),
        ("frozen.pbtxt", "frozen_graph_text", "frozen GraphDef (text, 15 nodes)"),
        ("model.keras", "keras_v3", "Keras v3 file"),
        ("model.h5", "keras_h5", "Keras HDF5 model file"),
    ],
)
def test_fixture_sources(given: str, kind: str, words: str) -> None:
    found = detect(SOURCES / given)
    assert (found.kind, found.convertible) == (kind, True)
    assert words in found.description
    if kind == "checkpoint":
        assert found.prefix == SOURCES / "ckpt" / "model.ckpt"


def test_savedmodels_are_recognised_as_such() -> None:
    linear = FIXTURE_MODELS / "tf1_linear"
    assert detect(linear).description == "a SavedModel model base (versions 1)"
    assert detect(linear / "1").kind == "saved_model"
    assert detect(linear / "1" / "saved_model.pb").kind == "saved_model"
    index = detect(linear / "1" / "variables" / "variables.index")
    assert index.kind == "saved_model" and "variables of the SavedModel" in index.description


def test_other_formats_by_their_bytes(tmp_path: Path) -> None:
    files = {
        "a.tflite": b"\x1c\x00\x00\x00TFL3" + bytes(32),
        "b.model": b"\x08\x07\x12\x04test\x3a\x02\x0a\x00\x42\x02\x10\x0d",  # ONNX: ir_version, producer, graph, opset
        "model.json": json.dumps({"format": "layers-model", "modelTopology": {}, "weightsManifest": []}).encode(),
        "conf.json": b'{"a": 1}',
        "notes.pbtxt": b"hello: world\n",
        "x.bin": bytes(range(256)),
        "renamed.pb": (FIXTURE_MODELS / "tf1_linear" / "1" / "saved_model.pb").read_bytes(),
        "graph.dat": (SOURCES / "frozen.pb").read_bytes(),  # a frozen graph under any name
        "meta.bin": (SOURCES / "ckpt" / "model.ckpt.meta").read_bytes(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.writestr("readme.txt", "hi")
    shutil.copy(SOURCES / "model.keras", tmp_path / "model.zip")  # a Keras v3 file under another suffix
    kinds = {name: detect(tmp_path / name).kind for name in [*files, "plain.zip", "model.zip"]}
    assert kinds == {
        "a.tflite": "tflite",
        "b.model": "onnx",
        "model.json": "tfjs",
        "conf.json": "json",
        "notes.pbtxt": "unknown",
        "x.bin": "unknown",
        "renamed.pb": "saved_model",
        "graph.dat": "frozen_graph",
        "meta.bin": "meta_graph",
        "plain.zip": "zip",
        "model.zip": "keras_v3",
    }
    assert "layers-model" in detect(tmp_path / "model.json").description
    assert "readme.txt" in detect(tmp_path / "plain.zip").description
    assert detect(tmp_path).kind == "tfjs"  # a folder holding a model.json
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    assert detect(tmp_path / "other").description == "a folder holding: notes.txt"


def test_checkpoint_parts_name_missing_shards(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(SOURCES / "ckpt", folder)
    assert checkpoint_parts(folder / "model.ckpt").missing == ()
    (folder / "model.ckpt.data-00000-of-00001").unlink()
    parts = checkpoint_parts(folder / "model.ckpt")
    assert parts.layout == "V2" and parts.missing == ("model.ckpt.data-00000-of-00001",)
    (folder / "model.ckpt.index").unlink()
    assert detect(folder / "model.ckpt").kind == "checkpoint"  # the .meta is still there
    with pytest.raises(PathNotFound):
        detect(folder / "other.ckpt")


@pytest.mark.skipif(not REALMODELS.is_dir(), reason="shared/realmodels not available")
def test_old_exports_are_v1_checkpoints() -> None:
    old = detect(REALMODELS / "not-savedmodels" / "serving_bad_half_plus_two" / "00000123")
    assert old.kind == "checkpoint" and "V1" in old.description
    bundle = detect(REALMODELS / "not-savedmodels" / "serving_session_bundle" / "00000123")
    assert "SessionBundle" in bundle.description
    parts = checkpoint_parts(bundle.prefix)
    assert parts.layout == "V1 sharded" and parts.restore_path.endswith("export-?????-of-00001")


def test_detection_never_imports_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.core.formats import detect; "
        f"kinds = [detect(p).kind for p in {[str(p) for p in sorted(SOURCES.iterdir())]!r}]; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tensorflow imported'; print(kinds)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "frozen_graph" in proc.stdout and "keras_v3" in proc.stdout
