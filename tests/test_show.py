"""`smsurgery show`: right on every real model, clear errors on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smsurgery import describe, read
from smsurgery.core.errors import (
    CorruptModel,
    NotASavedModel,
    PathNotFound,
    SignatureNotFound,
    TagSetNotFound,
    VersionNotFound,
)
from tests.conftest import (
    FIXTURE_MODELS,
    REAL_NOT_LOADABLE,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
)

ALL_MODELS = [REALMODELS / n for n in real_model_names()] + [FIXTURE_MODELS / n for n in fixture_model_names()]


def _tf_signatures(version_dir: Path, tags: list[str]) -> dict:
    """What TensorFlow's own loader returns for the same meta graph.

    The TF1 session loader where it can load the model; TensorFlow's own
    parser for the one real model that needs custom ops nobody has here.
    """
    import tensorflow as tf
    from tensorflow.python.saved_model import loader_impl

    if version_dir.name in REAL_NOT_LOADABLE:
        saved_model = loader_impl.parse_saved_model(str(version_dir))
        meta = next(m for m in saved_model.meta_graphs if sorted(m.meta_info_def.tags) == sorted(tags))
    else:
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)  # GPU exports on a CPU machine
        with tf.Graph().as_default(), tf.compat.v1.Session(config=config) as session:
            meta = tf.compat.v1.saved_model.loader.load(session, tags, str(version_dir))
    result = {}
    for key, sig in meta.signature_def.items():
        if key == "__saved_model_init_op":
            continue

        def view(infos):
            out = {}
            for alias, info in infos.items():
                shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
                out[alias] = (info.dtype, shape, info.name or None)
            return out

        result[key] = (sig.method_name, view(sig.inputs), view(sig.outputs))
    return result


def test_show_json_matches_tensorflow_on_every_model() -> None:
    """Compare show --json with TensorFlow's own parse, model by model, in one process each side."""
    from tensorflow.core.framework import types_pb2

    assert ALL_MODELS, "no models found"
    for path in ALL_MODELS:
        result = run_cli("show", "--json", path)
        assert result.code == 0, (path, result.stderr)
        report = json.loads(result.stdout)
        expected = _tf_signatures(Path(report["path"]), report["tags"])
        got = {
            key: (
                sig["method_name"],
                {a: (types_pb2.DataType.Value(t["dtype"]), t["shape"], t["name"]) for a, t in sig["inputs"].items()},
                {a: (types_pb2.DataType.Value(t["dtype"]), t["shape"], t["name"]) for a, t in sig["outputs"].items()},
            )
            for key, sig in report["signatures"].items()
        }
        assert got == expected, path


def test_show_reports_versions_kind_variables_assets() -> None:
    report = describe(REALMODELS / "saved_model_half_plus_two_cpu")
    assert report["version"] == 123 and report["versions"] == [123]
    assert report["kind"] == "tf1"
    assert report["variables"] == {"present": True, "count": 5, "bytes": 20}
    assert report["assets"] == [{"path": "assets/foo.txt", "bytes": 19}]
    tf2 = describe(REALMODELS / "saved_model_half_plus_two_tf2_cpu")
    assert tf2["kind"] == "tf2"
    config = describe(REALMODELS / "saved_model_half_plus_two_cpu_with_saved_model_config")
    assert (
        config["assets_extra"] == [{"path": "assets.extra/saved_model_config.pb", "bytes": 38}]
        or config["assets_extra"][0]["path"] == "assets.extra/saved_model_config.pb"
    )


def test_show_unknown_rank_and_sparse_inputs() -> None:
    report = describe(REALMODELS / "tfx_transform_fn")
    assert report["tags"] == ["transform"]  # no serve tag set: the only meta graph is shown
    company = report["signatures"]["transform_signature"]["inputs"]["company"]
    assert company["encoding"] == "coo_sparse" and company["name"] is None
    assert set(company["components"]) == {"values", "indices", "dense_shape"}
    x = describe(REALMODELS / "tf2onnx_regression")["signatures"]["serving_default"]["inputs"]["X"]
    assert x["shape"] is None
    scalar = describe(REALMODELS / "saved_model_half_plus_three")["signatures"]["serving_default"]["inputs"]["x"]
    assert scalar["shape"] == []


def test_show_ops_histogram_includes_functions() -> None:
    ops = describe(REALMODELS / "saved_model_half_plus_two_tf2_cpu", ops=True)["ops"]
    assert ops["StatefulPartitionedCall"] >= 1
    assert "Mul" in ops or "AddV2" in ops


def test_version_selection(model_copy) -> None:
    base = model_copy(REALMODELS / "saved_model_half_plus_two_cpu")
    shutil.copytree(base / "00000123", base / "7")
    assert read(base).ref.version == 123
    assert read(f"{base}@7").ref.version == 7
    assert read(base, version=7).ref.version_dir.name == "7"
    assert read(base / "7").ref.version == 7


def test_pbtxt_is_read(model_copy) -> None:
    from google.protobuf import text_format

    from smsurgery.core.model import parse_saved_model

    base = model_copy(REALMODELS / "saved_model_half_plus_two_cpu")
    version = base / "00000123"
    proto = parse_saved_model(version / "saved_model.pb")
    (version / "saved_model.pb").unlink()
    (version / "saved_model.pbtxt").write_text(text_format.MessageToString(proto))
    assert "serving_default" in describe(base)["signatures"]


def test_show_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.cli.app import main\n"
        "try:\n    main(['show', '--json', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow.python' not in sys.modules, 'tensorflow runtime imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REALMODELS / "saved_model_half_plus_two_tf2_cpu")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


# ---- errors: one line, exit 2, no traceback, and the library raises the same class ----


def test_missing_path(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("show", tmp_path / "nope"), "no such file or folder", "nope")
    with pytest.raises(PathNotFound):
        read(tmp_path / "nope")


def test_folder_without_savedmodel_lists_contents(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    assert_one_line_error(run_cli("show", tmp_path), "no saved_model.pb", "notes.txt")


def test_no_integer_version_folders(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    assert_one_line_error(run_cli("show", tmp_path), "no integer version folders", "latest")
    with pytest.raises(NotASavedModel):
        read(tmp_path)


def test_unknown_version_lists_versions() -> None:
    base = REALMODELS / "saved_model_half_plus_two_cpu"
    assert_one_line_error(run_cli("show", base, "--version", "9"), "no version 9", "123")
    assert_one_line_error(run_cli("show", f"{base}@9"), "no version 9", "123")
    with pytest.raises(VersionNotFound):
        read(base, version=9)


def test_unknown_tag_set_lists_tag_sets() -> None:
    assert_one_line_error(
        run_cli("show", REALMODELS / "tfx_transform_fn", "--tags", "serve"), "no meta graph", "[transform]"
    )
    with pytest.raises(TagSetNotFound):
        read(REALMODELS / "saved_model_half_plus_two_cpu").meta_graph(("serve", "gpu"))


def test_unknown_signature_lists_signatures() -> None:
    result = run_cli("show", REALMODELS / "saved_model_half_plus_two_cpu", "--signature", "predcit")
    assert_one_line_error(result, "no signature 'predcit'", "serving_default", "classify_x_to_y")
    with pytest.raises(SignatureNotFound):
        read(REALMODELS / "saved_model_half_plus_two_cpu").meta_graph().signature("predcit")


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_corrupt_saved_model_pb(model_copy, damage: str) -> None:
    base = model_copy(REALMODELS / "saved_model_half_plus_two_cpu")
    pb = base / "00000123" / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(data[: len(data) // 3] if damage == "truncated" else os.urandom(4096))
    assert_one_line_error(run_cli("show", base), "saved_model.pb", "not a valid savedmodel")
    with pytest.raises(CorruptModel):
        read(base)


def test_unparsable_pbtxt(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pbtxt").write_text("meta_graphs { meta_info_def { tags: 'serve' ")
    assert_one_line_error(run_cli("show", tmp_path), "saved_model.pbtxt", "not a valid text savedmodel")


def test_not_savedmodels_say_what_they_are() -> None:
    bundle = REALMODELS / "not-savedmodels" / "serving_session_bundle"
    assert_one_line_error(run_cli("show", bundle), "SessionBundle", "not a SavedModel")
    old = REALMODELS / "not-savedmodels" / "serving_bad_half_plus_two"
    assert_one_line_error(run_cli("show", old), "export.meta", "not a SavedModel")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "show", tmp_path / "nope")
    assert result.code != 0 and "Traceback" in result.stderr


def _model_with_a_large_pinned_graph(tmp_path: Path) -> Path:
    """tf1_linear plus a 9 MiB constant pinned to a GPU: a graph over show's read limit."""
    from smsurgery.core import protos

    base = tmp_path / "big"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear", base)
    pb = next(base.glob("*/saved_model.pb"))
    saved = protos.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    node = saved.meta_graphs[0].graph_def.node.add(name="frozen_weights", op="Const", device="/device:GPU:0")
    node.attr["value"].tensor.tensor_content = bytes(9 << 20)
    pb.write_bytes(saved.SerializeToString())
    return base


def test_show_skips_a_large_graph_unless_asked(tmp_path: Path) -> None:
    base = _model_with_a_large_pinned_graph(tmp_path)
    skipped = describe(base)
    assert skipped["graph_read"] is False and skipped["placements"] is None
    assert skipped["graph_bytes"] > 9 << 20 and not any("GPU" in w for w in skipped["warnings"])
    asked = describe(base, graph=True)
    assert asked["graph_read"] is True and asked["placements"]["/device:GPU:0"] == 1
    assert any("GPU" in w for w in asked["warnings"])
    result = run_cli("show", base)
    assert result.code == 0 and "was not read" in result.stderr and "--graph reads it" in result.stderr
    assert "was not read" not in run_cli("show", base, "--graph").stderr
