"""The committed fixtures must be what fixtures/build_fixtures.py builds.

The script is run into a temporary folder and every committed model is
compared with its rebuilt twin: meta graphs, tags, signature keys, method
names, input/output aliases, dtypes, shapes and tensor names, the file set,
asset contents and variable values.  Bytes are not compared: TensorFlow
writes a random UUID into fingerprint.pb, and Keras' model.export orders
its `_all_variables` list by object id, so some files differ between two
builds of the same model.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
SCRIPT = FIXTURES / "build_fixtures.py"
MODELS = FIXTURES / "models"
SOURCES = FIXTURES / "sources"

# Other tests rely on these names; a missing one is a failure, not a skip.
EXPECTED_MODELS = {
    "tf1_linear",
    "tf1_lookup",
    "tf2_module",
    "keras_mlp",
    "keras_image",
    "tf1_image",
    "tf2_image_dynamic",
}
EXPECTED_SOURCES = {
    "ckpt/checkpoint",
    "ckpt/model.ckpt.meta",
    "ckpt/model.ckpt.index",
    "ckpt/model.ckpt.data-00000-of-00001",
    "frozen.pb",
    "frozen.pbtxt",
    "model.keras",
    "model.h5",
}
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _committed_models() -> list[str]:
    if not MODELS.is_dir():
        return []
    return sorted(p.name for p in MODELS.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fixtures")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"build_fixtures.py failed ({proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return out


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _load_saved_model(path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(path.read_bytes())
    return sm


def _is_tf2(meta_graph) -> bool:
    return len(meta_graph.object_graph_def.nodes) > 0


def _tensor_name(name: str, tf2: bool) -> str:
    # TF2 exports name signature tensors after traced ops
    # (StatefulPartitionedCall_1:0, ...), whose counters may shift; TF1
    # exports use the graph's own names, which must match exactly.
    return re.sub(r"_\d+(?=:\d+$)", "", name) if tf2 else name


def _tensor_info(info, tf2: bool):
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return (info.dtype, shape, _tensor_name(info.name, tf2))


def _signature_map_keys(meta_graph) -> list[str] | None:
    """Signature keys as tf.saved_model.load sees them (TF2 exports only)."""
    nodes = meta_graph.object_graph_def.nodes
    if not nodes:
        return None
    for child in nodes[0].children:
        if child.local_name == "signatures":
            node = nodes[child.node_id]
            assert node.user_object.identifier == "signature_map"
            return sorted(c.local_name for c in node.children)
    return []


def _summary(meta_graph) -> dict:
    tf2 = _is_tf2(meta_graph)
    signatures = {}
    for key, sig in meta_graph.signature_def.items():
        signatures[key] = {
            "method_name": sig.method_name,
            "inputs": {a: _tensor_info(t, tf2) for a, t in sig.inputs.items()},
            "outputs": {a: _tensor_info(t, tf2) for a, t in sig.outputs.items()},
        }
    return {
        "tags": sorted(meta_graph.meta_info_def.tags),
        "tf2": tf2,
        "signatures": signatures,
        "signature_map": _signature_map_keys(meta_graph),
        "collections": sorted(meta_graph.collection_def),
        "assets": sorted(a.filename for a in meta_graph.asset_file_def),
    }


def _checkpoint(prefix: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {
        key: np.asarray(reader.get_tensor(key)) for key in reader.get_variable_to_shape_map() if key != OBJECT_GRAPH_KEY
    }


def _fingerprint(array: np.ndarray):
    return (array.dtype.str, array.shape, array.tobytes())


def test_committed_fixture_set_is_complete():
    assert set(_committed_models()) == EXPECTED_MODELS
    for name in EXPECTED_MODELS:
        assert (MODELS / name / "1" / "saved_model.pb").is_file(), name
        assert (MODELS / name / "1" / "variables").is_dir(), name
    assert _files(SOURCES) >= EXPECTED_SOURCES


@pytest.mark.parametrize("name", _committed_models() or sorted(EXPECTED_MODELS))
def test_model_matches_rebuild(rebuilt: Path, name: str):
    committed_base = MODELS / name
    rebuilt_base = rebuilt / "models" / name
    assert rebuilt_base.is_dir(), f"the script no longer builds {name}"
    versions = sorted(p.name for p in committed_base.iterdir() if p.is_dir())
    assert versions == sorted(p.name for p in rebuilt_base.iterdir() if p.is_dir())

    for version in versions:
        old, new = committed_base / version, rebuilt_base / version
        # Empty folders (e.g. assets/ of TF2 exports) are not kept by git.
        assert _files(old) == _files(new)

        old_sm = _load_saved_model(old / "saved_model.pb")
        new_sm = _load_saved_model(new / "saved_model.pb")
        assert old_sm.saved_model_schema_version == new_sm.saved_model_schema_version
        assert len(old_sm.meta_graphs) == len(new_sm.meta_graphs)
        old_graphs = {tuple(sorted(m.meta_info_def.tags)): m for m in old_sm.meta_graphs}
        new_graphs = {tuple(sorted(m.meta_info_def.tags)): m for m in new_sm.meta_graphs}
        assert sorted(old_graphs) == sorted(new_graphs)
        for tags, meta_graph in old_graphs.items():
            assert _summary(meta_graph) == _summary(new_graphs[tags]), f"{name}/{version} tags={tags}"

        for rel in sorted(_files(old)):
            if rel.startswith("assets/") or rel.startswith("assets.extra/"):
                assert (old / rel).read_bytes() == (new / rel).read_bytes(), rel

        old_vars = _checkpoint(old / "variables" / "variables")
        new_vars = _checkpoint(new / "variables" / "variables")
        assert sorted(old_vars) == sorted(new_vars)
        # Keras' export lists `_all_variables` in object-id order, so those
        # keys may hold the same tensors in another order: compare them as a
        # multiset, every other key one to one.
        for key in old_vars:
            if "_all_variables/" not in key:
                np.testing.assert_array_equal(old_vars[key], new_vars[key], err_msg=key)
        assert sorted(map(_fingerprint, old_vars.values())) == sorted(map(_fingerprint, new_vars.values()))


def test_sources_match_rebuild(rebuilt: Path):
    committed = _files(SOURCES)
    assert committed >= EXPECTED_SOURCES
    assert committed == _files(rebuilt / "sources")

    # The checkpoint state file must stay relative so the folder can move.
    for root in (SOURCES, rebuilt / "sources"):
        state = (root / "ckpt" / "checkpoint").read_text()
        assert 'model_checkpoint_path: "model.ckpt"' in state

    # The frozen graph: same nodes, and the tensors convert relies on.
    from google.protobuf import text_format
    from tensorflow.core.framework import graph_pb2

    def nodes(path: Path):
        graph = graph_pb2.GraphDef()
        if path.suffix == ".pbtxt":
            text_format.Parse(path.read_text(), graph)
        else:
            graph.ParseFromString(path.read_bytes())
        return [(n.name, n.op) for n in graph.node]

    for fname in ("frozen.pb", "frozen.pbtxt"):
        old, new = nodes(SOURCES / fname), nodes(rebuilt / "sources" / fname)
        assert old == new, fname
        names = dict(old)
        assert names.get("input") == "Placeholder"
        assert "output" in names
        assert not any(op.startswith("Variable") for _, op in old)

    old_ckpt = _checkpoint(SOURCES / "ckpt" / "model.ckpt")
    new_ckpt = _checkpoint(rebuilt / "sources" / "ckpt" / "model.ckpt")
    assert sorted(old_ckpt) == sorted(new_ckpt)
    for key in old_ckpt:
        np.testing.assert_array_equal(old_ckpt[key], new_ckpt[key], err_msg=key)


def test_images_match_rebuild(rebuilt: Path):
    """The sample images are byte-identical when rebuilt (TensorFlow's encoders are deterministic)."""
    committed = FIXTURES / "images"
    for name in ("sample.jpg", "sample.png"):
        assert (committed / name).read_bytes() == (rebuilt / "images" / name).read_bytes(), name
