"""`devices strip` / `devices set`: a GPU-pinned export loads on a CPU server without soft placement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.errors import InvalidEdit
from smsurgery.edits.devices import gpu_pin_warning, parse_device
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest
from tests.repair_models import X, build_tf1, build_tf2, make_writable, tf1_outputs, tf2_outputs


def _placements(path: Path) -> dict[str, int]:
    result = run_cli("show", path, "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)["placements"]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("/job:x/replica:0/task:0/device:GPU:0", "/job:x/replica:0/task:0/device:GPU:0"),
        ("/gpu:0", "/device:GPU:0"),
        ("/CPU:1", "/device:CPU:1"),
        ("/device:GPU:*", "/device:GPU:*"),
        ("/job:worker/device:TPU", "/job:worker/device:TPU:*"),
    ],
)
def test_device_strings_parse_as_tensorflow_does(text: str, canonical: str) -> None:
    assert parse_device(text).canonical() == canonical


@pytest.mark.parametrize("text", ["gpu:0", "/device:1GPU:0", "/job:a-b", "/device:GPU:x", "/replica:one", ""])
def test_device_strings_tensorflow_cannot_parse_are_refused(text: str) -> None:
    with pytest.raises(InvalidEdit):
        parse_device(text)


def test_gpu_pins_are_flagged_cpu_placements_are_not() -> None:
    assert gpu_pin_warning({"/device:CPU:0": 12, "/device:CPU:*": 5}) is None
    message = gpu_pin_warning({"/device:CPU:0": 20, "/device:GPU:0": 29, "/job:w/device:TPU:1": 1})
    assert message is not None and message.startswith("30 nodes ask for an accelerator")
    assert "/device:GPU:0" in message and "devices strip" in message


@pytest.mark.slow
def test_strip_lets_a_gpu_pinned_graph_load_without_soft_placement(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", device="/device:GPU:0")
    with pytest.raises(Exception, match=r"(?i)device"):
        tf1_outputs(source, ["serve"], {"x": X}, soft=False)
    before = tree_digest(source)
    result = run_cli("devices", "strip", source, "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert _placements(new) == {}
    assert "/device:GPU:0" in _placements(source)
    assert "ask for an accelerator" in run_cli("show", source).stderr
    assert "accelerator" not in run_cli("show", new).stderr
    expected = tf1_outputs(source, ["serve"], {"x": X})["y"]
    np.testing.assert_array_equal(tf1_outputs(new, ["serve"], {"x": X}, soft=False)["y"], expected)
    assert tree_digest(source) == before


@pytest.mark.slow
def test_set_with_match_rewrites_only_matching_placements(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", device="/device:GPU:0")
    result = run_cli("devices", "set", source, "/cpu:0", "--match", "*GPU*", "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert set(_placements(new)) == {"/device:CPU:0"}
    tf1_outputs(new, ["serve"], {"x": X}, soft=False)


@pytest.mark.slow
def test_bad_device_and_no_match_are_one_line_errors(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1", device="/device:GPU:0")
    assert_one_line_error(run_cli("devices", "set", source, "gpu:0"), "cannot parse the device 'gpu:0'")
    assert_one_line_error(run_cli("devices", "set", source, "/cpu:0", "--match", "*TPU*"), "matches", "GPU:0")
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]


@pytest.mark.slow
def test_strip_clears_devices_inside_tf2_functions_and_both_loaders_agree(tmp_path: Path) -> None:
    source = build_tf2(tmp_path / "m" / "1", device="/device:GPU:0")
    assert "/device:GPU:0" in _placements(source)
    result = run_cli("devices", "strip", source, "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert _placements(new) == {}
    tf1 = tf1_outputs(new, ["serve"], {"x": X}, soft=False)["y"]
    np.testing.assert_array_equal(tf1, tf2_outputs(new, {"x": X})["y"])
    np.testing.assert_array_equal(tf1, tf2_outputs(source, {"x": X})["y"])


@pytest.mark.slow
def test_strip_with_nothing_placed_publishes_nothing(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")  # the TF1 saver's ops ask for /device:CPU:0
    assert run_cli("devices", "strip", source, "--no-verify").code == 0
    result = run_cli("devices", "strip", tmp_path / "m" / "2")
    assert result.code == 0, result.stderr
    assert "no device placements" in result.stderr
    assert sorted(p.name for p in source.parent.iterdir()) == ["1", "2"]


@pytest.mark.slow
@pytest.mark.skipif(not (REALMODELS / "saved_model_half_plus_two_gpu").is_dir(), reason="real models not present")
def test_real_half_plus_two_gpu_stripped(model_copy) -> None:
    base = make_writable(model_copy(REALMODELS / "saved_model_half_plus_two_gpu"))
    result = run_cli("devices", "strip", base, "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    assert _placements(new) == {}
    from smsurgery.graph.session import import_tf

    t = import_tf()
    graph = t.Graph()
    config = t.compat.v1.ConfigProto(allow_soft_placement=False)
    with graph.as_default(), t.compat.v1.Session(graph=graph, config=config) as session:
        meta = t.compat.v1.saved_model.loader.load(session, ["serve"], str(new))
        signature = meta.signature_def["serving_default"]
        x = np.array([[1.0], [2.0], [5.0]], np.float32)
        y = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: x})
    np.testing.assert_allclose(y, x / 2 + 2)
