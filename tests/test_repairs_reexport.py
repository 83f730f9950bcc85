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
