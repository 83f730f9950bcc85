"""Spliced writes equal full re-serialisations, on every fixture and real model.

A splice applies a small-field edit to the skimmed protos and copies the
source's graph bytes verbatim. The result must parse equal to today's route
(full parse, edit, `SerializeToString(deterministic=True)`), and be
byte-identical to it whenever the source's graph bytes are themselves in
deterministic form (every fixture here, written by TensorFlow's Python).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsurgery.core import protos, skim
from smsurgery.core.model import read
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import RemoveSignature, RenameAlias, RenameSignature, SetDefault
from smsurgery.publishing import splice
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURE_MODELS, REALMODELS, fixture_model_names, real_model_names, tree_digest

MODELS = [FIXTURE_MODELS / n for n in fixture_model_names()] + [REALMODELS / n for n in real_model_names()]


def apply_edits(meta, edits) -> None:  # type: ignore[no-untyped-def]
    for item in edits:
        item.apply(meta)


def _edits_for(meta) -> list[list]:  # type: ignore[no-untyped-def]
    keys = meta.signature_keys()
    first = keys[0]
    plans = [[RenameSignature(first, first + "_renamed")]]
    if len(keys) > 1:
        plans.append([RemoveSignature(keys[-1])])
    if first != "serving_default":
        plans.append([SetDefault(first, drop_previous="serving_default" in keys)])
    if meta.kind == "tf1":
        alias = meta.signature(first).outputs[0].alias
        plans.append([RenameAlias(first, alias, alias + "_renamed", side="outputs")])
    return plans


def _graph_is_deterministic(model) -> bool:  # type: ignore[no-untyped-def]
    skimmed = model.skimmed
    for position, layout in enumerate(skimmed.file_layout.meta_graphs):
        original = skim.graph_def_bytes(skimmed.data, layout)
        if skimmed.graph_def(position).SerializeToString(deterministic=True) != original:
            return False
    return True


@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_splice_equals_the_full_route(folder: Path, tmp_path: Path) -> None:
    model = read(folder)
    meta_view = model.meta_graph(model.tag_sets[0])
    deterministic = _graph_is_deterministic(model)
    if folder.parent == FIXTURE_MODELS:
        assert deterministic, "TensorFlow's Python writes graphs in deterministic form"
    for plan in _edits_for(meta_view):
        assert splice.can_splice(model.skimmed, meta_view.skim, plan, drop_object_graph=False)
        small = protos.SavedModel()
        small.CopyFrom(model.skim)
        apply_edits(small.meta_graphs[meta_view.position], plan)
        splice.write_spliced(model.skimmed, small, tmp_path / "spliced.pb")
        full = protos.SavedModel()
        full.CopyFrom(model.proto)
        apply_edits(full.meta_graphs[meta_view.position], plan)
        today = full.SerializeToString(deterministic=True)
        written = (tmp_path / "spliced.pb").read_bytes()
        assert protos.saved_model_class().FromString(written) == full, plan
        assert (written == today) == deterministic, plan


def test_graph_editing_edits_take_the_full_route() -> None:
    from smsurgery.edits.kinds import AddOutput, Repoint

    model = read(FIXTURE_MODELS / "tf2_module")
    meta = model.meta_graph()
    assert not splice.can_splice(model.skimmed, meta.skim, [AddOutput("serving_default", "z", "x:0")],
                                 drop_object_graph=False)  # fmt: skip
    assert not splice.can_splice(model.skimmed, meta.skim, [RenameAlias("serving_default", "a", "b")],
                                 drop_object_graph=False)  # fmt: skip
    tf1 = read(FIXTURE_MODELS / "tf1_linear")
    assert not splice.can_splice(tf1.skimmed, tf1.meta_graph().skim, [Repoint("serving_default", "y", "x:0")],
                                 drop_object_graph=False)  # fmt: skip
    assert splice.can_splice(model.skimmed, meta.skim, [], drop_object_graph=True)


def test_a_tensor_the_source_did_not_name_is_not_proved_safe() -> None:
    model = read(FIXTURE_MODELS / "tf1_linear")
    before = model.meta_graph().skim
    after = protos.meta_graph_class()()
    after.CopyFrom(before)
    key = sorted(k for k in after.signature_def if not k.startswith("__"))[0]
    next(iter(after.signature_def[key].outputs.values())).name = "elsewhere:0"
    assert splice.small_edit_problems(before, after)
    assert not splice.small_edit_problems(before, before)


def test_edit_splices_and_leaves_the_source_alone(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_linear")
    source = tree_digest(base / "1")
    result = edit(base, [RenameSignature("prediction", "predict")], target=PublishTarget(verify=False))
    assert tree_digest(base / "1") == source
    new = read(base / str(result.published.version), full=True)  # type: ignore[union-attr]
    old = read(base / "1", full=True)
    assert new.proto.meta_graphs[0].graph_def == old.proto.meta_graphs[0].graph_def
    assert new.meta_graph().signature_keys() == ["predict"]
