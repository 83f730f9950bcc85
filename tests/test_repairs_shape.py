"""`shape set`: a batch-1 export becomes batchable; the old model refused batch 2, the new one runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.errors import InvalidEdit
from smsurgery.core.model import read
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import edit_from_json
from smsurgery.edits.shapes import parse_dims
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest
from tests.repair_models import X2, B, W, X, build_tf1, build_tf2, make_writable, tf1_outputs, tf2_outputs


def test_dims_parse_unknown_sizes() -> None:
    assert parse_dims("-1,224,224,3") == (-1, 224, 224, 3)
    assert parse_dims("?, 3") == (-1, 3)
    with pytest.raises(InvalidEdit, match="not a size"):
        parse_dims("-2,3")


def _shapes(path: Path) -> tuple[list[int], list[int]]:
    signature = json.loads(run_cli("show", path, "--json").stdout)["signatures"]["serving_default"]
    return signature["inputs"]["x"]["shape"], signature["outputs"]["y"]["shape"]


@pytest.mark.slow
@pytest.mark.parametrize("build", [build_tf1, build_tf2], ids=["tf1", "tf2"])
def test_batch_dynamic_lets_a_batch_1_export_run_batch_2(tmp_path: Path, build) -> None:
    source = build(tmp_path / "m" / "1", batch=1)
    with pytest.raises(Exception, match="shape"):
        tf1_outputs(source, ["serve"], {"x": X2})
    before = tree_digest(source)
    result = run_cli("shape", "set", source, "x", "--batch", "dynamic", "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert _shapes(new) == ([-1, 3], [-1, 2])
    expected = X2 @ W + B
    np.testing.assert_allclose(tf1_outputs(new, ["serve"], {"x": X2})["y"], expected, rtol=1e-6)
    if build is build_tf2:
        np.testing.assert_allclose(tf2_outputs(new, {"x": X2})["y"], expected, rtol=1e-6)
    assert tree_digest(source) == before


@pytest.mark.slow
def test_shape_set_from_json_edit_list(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", batch=1)
    result = edit(source, [edit_from_json({"op": "set_shape", "signature": "serving_default", "alias": "x",
                                           "dims": [-1, 3]})])  # fmt: skip
    assert read(result.path).meta_graph().signature("serving_default").input("x").shape == (-1, 3)
    np.testing.assert_allclose(tf1_outputs(result.path, ["serve"], {"x": X})["y"], X @ W + B, rtol=1e-6)


@pytest.mark.slow
def test_batch_fixed_by_a_reshape_to_a_constant_is_refused_with_its_name(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", batch=1, reshape_to_const=True)
    result = run_cli("shape", "set", source, "x", "-1,3")
    assert_one_line_error(result, "fixed elsewhere", "Reshape 'y_fixed'", "[1, 2]")
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]


@pytest.mark.slow
def test_rank_change_is_refused(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", batch=1)
    assert_one_line_error(run_cli("shape", "set", source, "x", "-1,3,1"), "rank 2")
    assert_one_line_error(run_cli("shape", "set", source, "nope", "--batch", "dynamic"), "nope")
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]


@pytest.mark.slow
@pytest.mark.skipif(not (REALMODELS / "saved_model_half_plus_two_tf2_cpu").is_dir(), reason="real models not present")
def test_batch_dynamic_on_serving_s_tf2_half_plus_two_whose_input_is_fixed_at_1(model_copy) -> None:
    """Serving's own TF2 test model declares x as [1]: its TF1 loader refuses batch 3 (tf.saved_model.load does
    not); after the repair both loaders run it."""
    base = make_writable(model_copy(REALMODELS / "saved_model_half_plus_two_tf2_cpu"))
    source = next(p for p in base.iterdir() if p.name.isdigit())
    three = np.array([1.0, 2.0, 3.0], np.float32)
    with pytest.raises(Exception, match="Cannot feed value of shape"):
        tf1_outputs(source, ["serve"], {"x": three})
    result = run_cli("shape", "set", base, "x", "--batch", "dynamic", "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert read(new).meta_graph().signature("serving_default").input("x").shape == (-1,)
    expected = three * 0.5 + 2.0
    np.testing.assert_allclose(tf1_outputs(new, ["serve"], {"x": three})["y"], expected, rtol=1e-6)
    np.testing.assert_allclose(tf2_outputs(new, {"x": three})["y"], expected, rtol=1e-6)
