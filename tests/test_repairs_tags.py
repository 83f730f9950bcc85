"""`tags set` / `tags add`: a `train`-tagged export becomes servable; both loaders agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smsurgery.core.errors import NameCollision
from smsurgery.core.model import read
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import SetTags, edit_from_json
from smsurgery.publishing.target import PublishTarget
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest
from tests.repair_models import X, build_tf1, make_writable, tf1_outputs

pytestmark = pytest.mark.slow


@pytest.fixture
def train_model(tmp_path: Path) -> Path:
    return build_tf1(tmp_path / "m" / "1", tags=("train",))


def test_tags_set_makes_a_train_export_loadable_as_serve(train_model: Path) -> None:
    before = tree_digest(train_model)
    result = run_cli("tags", "set", train_model.parent, "serve", "--tags", "train", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tags"] == ["serve"]
    assert data["changes"][0]["kind"] == "set_tags"
    new = Path(data["path"])
    assert read(new).tag_sets == [("serve",)]
    expected = tf1_outputs(train_model, ["train"], {"x": X})
    np.testing.assert_array_equal(tf1_outputs(new, ["serve"], {"x": X})["y"], expected["y"])
    assert tree_digest(train_model) == before


def test_run_warns_when_no_meta_graph_is_tagged_serve(train_model: Path) -> None:
    result = run_cli("run", train_model, "--input", "x=[[1,2,3]]")
    assert result.code == 0, result.stderr
    assert "no meta graph is tagged 'serve'" in result.stderr
    assert "tags set" in result.stderr


def test_tags_add_serves_the_graph_under_both_tag_sets(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")
    result = edit(source, [edit_from_json({"op": "add_tags", "tags": ["serve", "gpu"]})])
    assert sorted(read(result.path).tag_sets) == [("serve",), ("serve", "gpu")]
    a = tf1_outputs(result.path, ["serve"], {"x": X})["y"]
    b = tf1_outputs(result.path, ["gpu", "serve"], {"x": X})["y"]
    np.testing.assert_array_equal(a, b)


def test_tag_set_another_meta_graph_has_is_refused(tmp_path: Path) -> None:
    source = build_tf1(tmp_path / "m" / "1")
    unverified = PublishTarget(verify=False)
    two = edit(source, [edit_from_json({"op": "add_tags", "tags": "serve,gpu"})], target=unverified).path
    with pytest.raises(NameCollision, match="already has the tag set"):
        edit(two, [SetTags(("gpu", "serve"))], tags=("serve",), target=unverified)
    result = run_cli("tags", "add", two, "serve,gpu")
    assert_one_line_error(result, "already has the tag set [serve,gpu]")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]


def test_empty_tag_is_refused_and_nothing_written(train_model: Path) -> None:
    result = run_cli("tags", "set", train_model, "serve,")
    assert_one_line_error(result, "tag must not be empty")
    assert sorted(p.name for p in train_model.parent.iterdir()) == ["1"]


@pytest.mark.skipif(not (REALMODELS / "tfx_transform_fn").is_dir(), reason="real models not present")
def test_real_tfx_transform_fn_retagged_serve(model_copy, tmp_path: Path) -> None:
    source = make_writable(model_copy(REALMODELS / "tfx_transform_fn"))
    result = run_cli("tags", "set", source, "serve", "--out", tmp_path / "served")
    assert result.code == 0, result.stderr
    new = tmp_path / "served" / "1"
    assert read(new).tag_sets == [("serve",)]
    assert read(new).meta_graph().signature_keys() == read(source).meta_graph().signature_keys()
    from smsurgery.graph.session import load_session, load_tf2

    with load_session(new, ["serve"]) as session:
        assert session.signature_keys() == ["transform_signature"]
    assert "transform_signature" in load_tf2(new, ["serve"]).signatures


@pytest.mark.parametrize(("name", "warns"), [("tf2_module", True), ("tf1_linear", False)])
def test_a_second_tag_set_on_a_tf2_export_says_tf_saved_model_load_reads_it_the_tf1_way(
    tmp_path: Path, name: str, warns: bool
) -> None:
    from tests.conftest import FIXTURE_MODELS

    added = run_cli("tags", "add", FIXTURE_MODELS / name, "serve,gpu", "--out", tmp_path / "m", "--no-verify")
    assert added.code == 0, added.stderr
    shown = run_cli("show", tmp_path / "m", "--json")
    said = "reads the object graph only when there is one"
    assert (said in added.stderr, any(said in w for w in json.loads(shown.stdout)["warnings"])) == (warns, warns)
