"""`reexport`: a Keras 3 model saved with tf.saved_model.save becomes runnable by Serving's TF1 loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.model import read
from smsurgery.inspect.restore_check import tf1_loader_warning
from tests.conftest import (
    FIXTURE_MODELS,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
    tree_digest,
)
from tests.repair_models import build_keras_saved, build_tf1

ONES = np.ones((2, 4), np.float32)


@pytest.mark.parametrize("path", [FIXTURE_MODELS / n for n in fixture_model_names()]
                         + [REALMODELS / n for n in real_model_names()], ids=lambda p: p.name)  # fmt: skip
def test_no_warning_on_models_the_tf1_loader_runs(path: Path) -> None:
    model = read(path)
    assert all(tf1_loader_warning(model.meta_graph(tags).proto) is None for tags in model.tag_sets)


def _tf1(path: Path) -> dict:
    from tests.repair_models import tf1_outputs

    return tf1_outputs(path, ["serve"], {"inputs": ONES})


@pytest.mark.slow
def test_keras_tf_saved_model_save_reexported_runs_under_both_loaders(tmp_path: Path) -> None:
    from smsurgery.graph.session import load_tf2, run_tf2

    source = build_keras_saved(tmp_path / "m" / "1")
    shown = run_cli("show", source)
    assert "cannot run serving_default" in shown.stderr and "smsurgery reexport" in shown.stderr
    with pytest.raises(Exception, match="Could not find variable"):
        _tf1(source)
    before = tree_digest(source)
    expected = run_tf2(load_tf2(source), "serving_default", {"inputs": ONES})
    result = run_cli("reexport", source, "--json")  # run_cli validates docs/schemas/reexport.json
    assert result.code == 0, result.stderr
    new = tmp_path / "m" / "2"
    data = json.loads(result.stdout)
    assert (data["path"], data["version"], data["tags"], data["verified"]) == (str(new), 2, ["serve"], True)
    assert data["signatures"] == read(source).meta_graph().signature_keys()
    np.testing.assert_allclose(_tf1(new)["output_0"], expected["output_0"], rtol=1e-6)
    np.testing.assert_allclose(run_tf2(load_tf2(new), "serving_default", {"inputs": ONES})["output_0"],
                               expected["output_0"], rtol=1e-6)  # fmt: skip
    assert "cannot run" not in run_cli("show", new).stderr
    assert read(new).meta_graph().signature_keys() == read(source).meta_graph().signature_keys()
    assert tree_digest(source) == before


@pytest.mark.slow
def test_tf1_export_has_nothing_to_reexport(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")
    assert_one_line_error(run_cli("reexport", source), "TF1 export", "nothing to re-export")
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]


def _two_tag_sets(tmp_path: Path) -> Path:
    """tf2_module with a second tag set (`tags add serve,gpu`): tf.saved_model.load then reads it the TF1 way."""
    import shutil

    shutil.copytree(FIXTURE_MODELS / "tf2_module", tmp_path / "src")
    added = run_cli("tags", "add", tmp_path / "src", "serve,gpu", "--out", tmp_path / "m")
    assert added.code == 0, added.stderr
    assert "loads this model the TF1 way" in added.stderr
    return tmp_path / "m" / "1"


@pytest.mark.slow
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "no-verify"])
def test_reexport_keeps_a_second_tag_set_and_its_object_graph(tmp_path: Path, verify: bool) -> None:
    from tests.repair_models import tf2_outputs

    source = _two_tag_sets(tmp_path)
    assert "loads this model the TF1 way" in run_cli("show", source).stderr
    before = tree_digest(source)
    feeds = {"a": np.ones((2, 3), np.float32), "b": np.full((2, 3), 2.0, np.float32)}
    expected = tf2_outputs(FIXTURE_MODELS / "tf2_module" / "1", feeds)
    result = run_cli("reexport", source, "--out", tmp_path / "new", *([] if verify else ["--no-verify"]))
    assert result.code == 0, result.stderr
    new = tmp_path / "new" / "1"
    assert sorted(read(new).tag_sets) == [("serve",), ("serve", "gpu")]
    for tags in (["serve"], ["serve", "gpu"]):  # each tag set runs under both loaders, values as the source's
        for outputs in (_tf1_with(new, tags, feeds), tf2_outputs(new, feeds, tags)):
            assert outputs.keys() == expected.keys()
            for alias, value in expected.items():
                np.testing.assert_allclose(outputs[alias], value, rtol=1e-6)
    assert tree_digest(source) == before


def _tf1_with(path: Path, tags: list[str], feeds: dict) -> dict:
    from tests.repair_models import tf1_outputs

    return tf1_outputs(path, tags, feeds)


@pytest.mark.slow
def test_reexport_refuses_meta_graphs_that_differ_unless_tags_pick_one(tmp_path: Path) -> None:
    source = _two_tag_sets(tmp_path)
    renamed = run_cli("signature", "rename", source.parent, "double", "twice", "--tags", "serve,gpu")
    assert renamed.code == 0, renamed.stderr
    differing = source.parent / "2"
    assert_one_line_error(run_cli("reexport", differing, "--out", tmp_path / "new"), "differ", "--tags")
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
    picked = run_cli("reexport", differing, "--tags", "serve", "--out", tmp_path / "new")
    assert picked.code == 0, picked.stderr
    assert "not carried" in picked.stderr and "[serve,gpu]" in picked.stderr
    assert read(tmp_path / "new" / "1").tag_sets == [("serve",)]


@pytest.mark.slow
def test_reexport_of_a_model_no_loader_can_load_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(FIXTURE_MODELS / "tf2_module", tmp_path / "bad")
    shard = next((tmp_path / "bad" / "1" / "variables").glob("variables.data-*"))
    shard.write_bytes(bytes(b ^ 0xFF for b in shard.read_bytes()))  # same size: only TensorFlow's checksums see it
    result = run_cli("reexport", tmp_path / "bad", "--out", tmp_path / "new")
    assert_one_line_error(result, "tf.saved_model.load failed", "checksum")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["1"]


def _real_tf2_models() -> list[str]:
    return [n for n in real_model_names() if read(REALMODELS / n).meta_graph().kind == "tf2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", _real_tf2_models())
def test_reexport_of_real_tf2_models_verifies_or_says_why_in_one_line(tmp_path: Path, name: str) -> None:
    """Every real TF2 export re-exports with every signature verified under both loaders, unless
    tf.saved_model.load itself cannot load it (a custom op, a Keras 2 optimizer): then one line, nothing written."""
    result = run_cli("reexport", REALMODELS / name, "--out", tmp_path / "new", "--json")
    if result.code == 0:
        data = json.loads(result.stdout)
        assert data["verified"] and data["signatures"] == read(REALMODELS / name).meta_graph().signature_keys()
    else:
        assert_one_line_error(result, "tf.saved_model.load failed")
        assert not (tmp_path / "new").exists()
