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
from tests.repair_models import X2, X, build_tf1, build_tf1_adam, make_writable, tf1_outputs, tf2_outputs

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
    assert {"z", "Tanh"} <= set(unreached(read(removed).meta_graph().proto).nodes)
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


@pytest.mark.parametrize("resource", [False, True], ids=["ref-variables", "resource-variables"])
def test_tf1_optimizer_slots_leave_graph_and_checkpoint(tmp_path: Path, resource: bool) -> None:
    from smsurgery.core.checkpoint_index import read_index

    source = build_tf1_adam(tmp_path / "m" / "1", resource=resource)
    names = {e.name for e in read_index(source / "variables" / "variables.index")}
    assert {"w/Adam", "w/Adam_1", "b/Adam", "beta1_power", "global_step"} <= names
    before = tree_digest(source)
    dry = run_cli("prune", source, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "variable w/Adam (24 bytes)" in dry.stdout and "checkpoint 112 -> 32 bytes" in dry.stdout
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]
    result = run_cli("prune", source, "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verification"]["ok"] is True
    new = Path(data["path"])
    assert {e.name for e in read_index(new / "variables" / "variables.index")} == {"w", "b"}
    meta = read(new).meta_graph().proto
    assert not any("Adam" in node.name for node in meta.graph_def.node)
    assert set(meta.collection_def) == {"variables", "trainable_variables"}
    assert (new / "variables" / "variables.data-00000-of-00001").stat().st_size == 32
    expected = tf1_outputs(source, ["serve"], {"x": X2})["y"]
    np.testing.assert_array_equal(tf1_outputs(new, ["serve"], {"x": X2})["y"], expected)
    np.testing.assert_array_equal(tf2_outputs(new, {"x": X2})["y"], expected)
    assert tree_digest(source) == before
    again = run_cli("prune", new)
    assert again.code == 0 and "nothing to prune" in again.stderr


def test_tf2_optimizer_variables_leave_object_graph_and_checkpoint(tmp_path: Path) -> None:
    from smsurgery.core.checkpoint_index import read_index
    from tests.repair_models import B, W, build_tf2_adam, tf

    source = build_tf2_adam(tmp_path / "m" / "1")
    names = {e.name for e in read_index(source / "variables" / "variables.index")}
    assert "optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE" in names
    before = tree_digest(source)
    dry = run_cli("prune", source, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "variable optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE (8 bytes)" in dry.stdout
    assert "6 variables" in dry.stdout and "12 object-graph nodes" in dry.stdout
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]
    result = run_cli("prune", source, "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verification"]["ok"] is True
    new = Path(data["path"])
    kept = {e.name for e in read_index(new / "variables" / "variables.index")}
    assert kept == {"w/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE", "_CHECKPOINTABLE_OBJECT_GRAPH"}
    meta = read(new).meta_graph().proto
    assert [n.WhichOneof("kind") for n in meta.object_graph_def.nodes].count("variable") == 2
    assert not any(node.name.startswith("adam/") for node in meta.graph_def.node)
    expected = tf1_outputs(source, ["serve"], {"x": X2})["y"]
    np.testing.assert_array_equal(tf1_outputs(new, ["serve"], {"x": X2})["y"], expected)
    np.testing.assert_array_equal(tf2_outputs(new, {"x": X2})["y"], expected)
    loaded = tf().saved_model.load(str(new))  # restores every kept variable, no optimizer any more
    assert not hasattr(loaded, "optimizer")
    assert not np.array_equal(loaded.w.numpy(), W) and not np.array_equal(loaded.b.numpy(), B)  # trained values
    np.testing.assert_array_equal(loaded.w.numpy(), tf().saved_model.load(str(source)).w.numpy())
    assert tree_digest(source) == before
    again = run_cli("prune", new)
    assert again.code == 0 and "nothing to prune" in again.stderr


@pytest.mark.skipif(not (REALMODELS / "tfjs_model_single_input_multi_output").is_dir(), reason="real models absent")
def test_real_tf2_unused_variable_pruned_with_older_saver(model_copy, tmp_path: Path) -> None:
    from smsurgery.core.checkpoint_index import read_index

    source = make_writable(model_copy(REALMODELS / "tfjs_model_single_input_multi_output"))
    result = run_cli("prune", source, "--out", tmp_path / "pruned", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verification"]["ok"] is True
    names = {e.name for e in read_index(Path(data["path"]) / "variables" / "variables.index")}
    assert "v/.ATTRIBUTES/VARIABLE_VALUE" not in names and len(names) == 2


@pytest.mark.skipif(not (REALMODELS / "rust_keras2_single_input").is_dir(), reason="real models absent")
def test_real_keras2_slot_variables_planned_and_every_id_stays_in_range() -> None:
    """Pure protos: Keras 2 Adam slots (`slot_variables`, no children) go; every renumbered id is valid."""
    from smsurgery.edits.prune import prune_meta
    from smsurgery.edits.prune_objects import trackables

    meta = read(REALMODELS / "rust_keras2_single_input").meta_graph().proto
    pruned = prune_meta(meta)
    assert sum(".OPTIMIZER_SLOT/optimizer/" in key for key in pruned.checkpoint_keys) == 12  # m and v, 6 weights
    assert not any(key.startswith("layer_with_weights-0/kernel/.ATTR") for key in pruned.checkpoint_keys)
    graph = meta.object_graph_def
    count = len(graph.nodes)
    ids = [c.node_id for n in graph.nodes for c in n.children]
    ids += [
        i for n in graph.nodes for s in n.slot_variables for i in (s.original_variable_node_id, s.slot_variable_node_id)
    ]
    ids += [i for f in graph.concrete_functions.values() for i in f.bound_inputs]
    assert ids and all(0 <= i < count for i in ids)
    holder = next(n for n in meta.graph_def.node if n.name == "Const" and n.attr["value"].tensor.string_val)
    kept = trackables(holder.attr["value"].tensor.string_val[0])
    keys = {a.checkpoint_key for n in kept.nodes for a in n.attributes}
    assert not keys & set(pruned.checkpoint_keys) and all(
        0 <= c.node_id < len(kept.nodes) for n in kept.nodes for c in n.children
    )
