"""`prune`: nodes and functions nothing reaches go; outputs stay identical under both loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.model import read
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import RemoveSignature
from smsurgery.edits.prune import unreached
from tests.conftest import REALMODELS, run_cli, tree_digest
from tests.repair_models import X, build_tf1, make_writable, tf1_outputs

pytestmark = pytest.mark.slow


def _two_signature_tf1(version_dir: Path) -> Path:
    """serving_default: y = x @ W + b; extra: z = tanh(x) * 3, nodes only `extra` reaches."""
    from tests.repair_models import tf

    t = tf()
    graph = t.Graph()
    with graph.as_default(), t.compat.v1.Session(graph=graph) as session:
        x = t.compat.v1.placeholder(t.float32, [None, 3], name="x")
        w = t.compat.v1.get_variable("w", initializer=np.ones((3, 2), np.float32))
        y = t.identity(t.matmul(x, w), name="y")
        z = t.identity(t.tanh(x) * 3.0, name="z")
        session.run(t.compat.v1.global_variables_initializer())
        builder = t.compat.v1.saved_model.Builder(str(version_dir))
        signatures = {
            "serving_default": t.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y}),
            "extra": t.compat.v1.saved_model.predict_signature_def({"x": x}, {"z": z}),
        }
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
        builder.save()
    return version_dir


def test_prune_after_signature_removal_drops_its_nodes(tmp_path: Path) -> None:
    source = _two_signature_tf1(tmp_path / "m" / "1")
    removed = edit(source, [RemoveSignature("extra")]).path
    nodes, _ = unreached(read(removed).meta_graph().proto)
    assert {"z", "Tanh"} <= set(nodes)
    before = tree_digest(removed)
    dry = run_cli("prune", removed, "--dry-run")
    assert dry.code == 0 and "node z" in dry.stdout and "saved_model.pb" in dry.stdout
    assert sorted(p.name for p in source.parent.iterdir()) == ["1", "2"]
    result = run_cli("prune", removed, "--json")
    assert result.code == 0, result.stderr
    new = Path(json.loads(result.stdout)["path"])
    names = {node.name for node in read(new).meta_graph().proto.graph_def.node}
    assert "z" not in names and "y" in names
    assert (new / "saved_model.pb").stat().st_size < (removed / "saved_model.pb").stat().st_size
    np.testing.assert_array_equal(
        tf1_outputs(new, ["serve"], {"x": X})["y"], tf1_outputs(source, ["serve"], {"x": X})["y"]
    )
    assert tree_digest(removed) == before


def test_nothing_to_prune_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")
    assert run_cli("prune", source, "--no-verify").code == 0  # the unused 'init' op of the builder goes
    result = run_cli("prune", tmp_path / "m" / "2")
    assert result.code == 0, result.stderr
    assert "nothing to prune" in result.stderr
    assert sorted(p.name for p in source.parent.iterdir()) == ["1", "2"]


@pytest.mark.skipif(not (REALMODELS / "rust_regression_savedmodel").is_dir(), reason="real models not present")
def test_real_tf2_orphan_functions_pruned_both_loaders_agree(model_copy, tmp_path: Path) -> None:
    source = make_writable(model_copy(REALMODELS / "rust_regression_savedmodel"))
    result = run_cli("prune", source, "--out", tmp_path / "pruned", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["changes"][0]["kind"] == "prune"
    new = Path(data["path"])
    assert len(read(new).meta_graph().proto.graph_def.library.function) < len(
        read(source).meta_graph().proto.graph_def.library.function
    )
    assert data["verification"]["ok"] is True
