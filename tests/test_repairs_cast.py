"""`input cast`: a float model takes uint8 pixels (scaled); both loaders compute old(cast(x) * scale)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.model import read
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest
from tests.repair_models import B, W, build_tf1, build_tf2, make_writable, tf1_outputs, tf2_outputs

pytestmark = pytest.mark.slow
PIXELS = np.array([[0, 128, 255], [10, 20, 30]], np.uint8)


@pytest.mark.parametrize("build", [build_tf1, build_tf2], ids=["tf1", "tf2"])
def test_uint8_input_cast_and_scaled_for_a_float_model(tmp_path: Path, build) -> None:
    source = build(tmp_path / "m" / "1")
    before = tree_digest(source)
    result = run_cli("input", "cast", source, "x", "uint8", "--scale", "0.00392156862745098", "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert read(new).meta_graph().signature("serving_default").input("x").dtype == "DT_UINT8"
    expected = (PIXELS.astype(np.float32) * np.float32(1 / 255)) @ W + B
    np.testing.assert_allclose(tf1_outputs(new, ["serve"], {"x": PIXELS})["y"], expected, rtol=1e-5)
    if build is build_tf2:
        np.testing.assert_allclose(tf2_outputs(new, {"x": PIXELS})["y"], expected, rtol=1e-5)
    assert tree_digest(source) == before


def test_cast_tensorflow_cannot_do_is_refused(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")
    assert_one_line_error(run_cli("input", "cast", source, "x", "string"), "cannot cast", "string")
    assert_one_line_error(run_cli("input", "cast", source, "x", "float32"), "already DT_FLOAT")
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]


@pytest.mark.skipif(not (REALMODELS / "tfjs_times_three_float").is_dir(), reason="real models not present")
def test_real_tf2_times_three_takes_int32_under_both_loaders(model_copy) -> None:
    source = make_writable(model_copy(REALMODELS / "tfjs_times_three_float"))
    result = run_cli("input", "cast", source, "x", "int32", "--out", source.parent / "out", "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    x = np.array(7, np.int32)
    tf1 = tf1_outputs(new, ["serve"], {"x": x})["output_0"]
    np.testing.assert_allclose(tf1, 21.0)
    np.testing.assert_allclose(tf2_outputs(new, {"x": x})["output_0"], tf1)


@pytest.mark.skipif(not (REALMODELS / "saved_model_half_plus_two_cpu").is_dir(), reason="real models not present")
def test_input_computed_inside_the_graph_is_refused(model_copy) -> None:
    base = make_writable(model_copy(REALMODELS / "saved_model_half_plus_two_cpu"))
    assert_one_line_error(run_cli("input", "cast", base, "x", "int32"), "not a Placeholder")
