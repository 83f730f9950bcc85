"""Signature surgery through the Python API: both loaders agree, values by name, sources untouched.

Every edit here publishes a new version with verification on (old and new
run side by side through the TF1 loader, and `tf.saved_model.load` for TF2
exports), and the tests then load the new version themselves with both
loaders and compare values *by name* with the source's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from smsurgery import read
from smsurgery.core.errors import (
    InvalidEdit,
    NameCollision,
    UnsupportedModel,
    VerificationFailed,
)
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import (
    AddOutput,
    AddSignature,
    Edit,
    RemoveOutput,
    RemoveSignature,
    RenameAlias,
    RenameSignature,
    Repoint,
    SetDefault,
)
from smsurgery.edits.signatures import EditReport
from smsurgery.graph.session import load_session, load_tf2, run_tf2
from smsurgery.publishing.atomic import STAGING_PREFIX
from smsurgery.publishing.target import PublishTarget
from smsurgery.serving.samples import sample_inputs
from tests.conftest import REALMODELS, tree_digest

A = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], np.float32)
B = np.array([[0.1, 0.2, 0.3], [4.0, 5.0, 6.0]], np.float32)


@pytest.fixture
def writable_copy(model_copy):
    """model_copy, made writable (the shared real models are read-only folders)."""

    def copy(source: str | Path, name: str | None = None) -> Path:
        target = model_copy(source, name)
        for folder, _dirs, files in os.walk(target):
            for entry in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chmod(entry, os.stat(entry).st_mode | stat.S_IWUSR)
        return target

    return copy


def tf1_run(path: Path, key: str, feeds: dict) -> dict:
    with load_session(path, ["serve"]) as session:
        return session.run(key, feeds)


def tf2_view(path: Path) -> tuple[object, dict]:
    """tf.saved_model.load: the loaded object and {key: (sorted inputs, sorted outputs)}."""
    loaded = load_tf2(path)
    keys = {}
    for key, function in loaded.signatures.items():
        keys[key] = (sorted(function.structured_input_signature[1]), sorted(function.structured_outputs))
    return loaded, keys


def tf1_view(path: Path) -> dict:
    meta = read(path).meta_graph()
    return {s.key: ([t.alias for t in s.inputs], [t.alias for t in s.outputs]) for s in meta.signatures()}


def assert_loaders_agree(path: Path) -> object:
    loaded, tf2 = tf2_view(path)
    assert tf2 == tf1_view(path)
    return loaded


def no_staging_left(base: Path) -> bool:
    return not any(child.name.startswith(STAGING_PREFIX) for child in base.iterdir())


# --------------------------------------------------------------------------- TF2 renames


def test_rename_serving_default_of_real_tf2_export(writable_copy) -> None:
    base = writable_copy(REALMODELS / "saved_model_half_plus_two_tf2_cpu")
    before = tree_digest(base)
    result = edit(base, [RenameSignature("serving_default", "predict")])
    assert result.published.version == 124 and result.path == base / "124"
    assert tree_digest(base / "00000123") == {k[len("00000123/") :]: v for k, v in before.items()}
    loaded = assert_loaders_agree(result.path)
    assert "serving_default" not in tf1_view(result.path) and "predict" in loaded.signatures
    x = np.array([3.0], np.float32)
    assert tf1_run(result.path, "predict", {"x": x})["y"].tolist() == [3.5]
    assert run_tf2(loaded, "predict", {"x": x})["y"].tolist() == [3.5]
    # fingerprint.pb is left out (it would hash the old saved_model.pb); both loaders accept that,
    # and tf.saved_model.load still sees a TF2 export (the tf.Module's attributes are there).
    assert not (result.path / "fingerprint.pb").exists() and hasattr(loaded, "a")
    assert result.verification.ok and {s.tf2 for s in result.verification.signatures} <= {"agrees", "both fail alike"}


@pytest.mark.parametrize(
    ("side", "old", "new"),
    [
        ("outputs", "output", "z_out"),  # output moves after score
        ("outputs", "score", "a_score"),  # score moves before output
        ("inputs", "a", "zz"),  # a moves after b
        ("inputs", "b", "a0"),  # b moves before a
        ("inputs", "a", "a1"),  # order kept
    ],
)
def test_alias_renames_keep_values_by_name_under_both_loaders(writable_copy, side, old, new) -> None:
    base = writable_copy("tf2_module")
    reference = tf1_run(base / "1", "serving_default", {"a": A, "b": B})
    result = edit(base, [RenameAlias("serving_default", old, new, side=side)])
    feeds = {(new if k == old else k): v for k, v in {"a": A, "b": B}.items()}
    expected = {(new if k == old else k): v for k, v in reference.items()}
    loaded = assert_loaders_agree(result.path)
    for got in (tf1_run(result.path, "serving_default", feeds), run_tf2(loaded, "serving_default", feeds)):
        assert sorted(got) == sorted(expected)
        for alias, value in expected.items():
            np.testing.assert_allclose(got[alias], value, rtol=1e-6, atol=1e-6)
    assert run_tf2(loaded, "double", {"x": np.array([1.0], np.float32)})["y"].tolist() == [6.0]


def test_tf2_input_alias_need_not_be_an_identifier(writable_copy) -> None:
    """tf.saved_model.load binds inputs through **kwargs: `my-input` works (keywords do not, see the CLI tests)."""
    base = writable_copy("tf2_module")
    result = edit(base, [RenameAlias("double", "x", "my-input")])
    loaded = assert_loaders_agree(result.path)
    assert run_tf2(loaded, "double", {"my-input": np.array([1.0], np.float32)})["y"].tolist() == [6.0]


def test_remove_output_and_signature_tf2(writable_copy) -> None:
    base = writable_copy("tf2_module")
    reference = tf1_run(base / "1", "serving_default", {"a": A, "b": B})
    result = edit(base, [RemoveOutput("serving_default", "output"), RemoveSignature("double")])
    loaded = assert_loaders_agree(result.path)
    assert sorted(loaded.signatures) == ["serving_default"]
    for got in (tf1_run(result.path, "serving_default", {"a": A, "b": B}),
                run_tf2(loaded, "serving_default", {"a": A, "b": B})):  # fmt: skip
        assert list(got) == ["score"]
        np.testing.assert_allclose(got["score"], reference["score"], rtol=1e-6)


def test_remove_first_of_two_outputs_of_real_model(writable_copy) -> None:
    base = writable_copy(REALMODELS / "tfjs_model_single_input_multi_output", "multi/1").parent
    feeds = sample_inputs(read(base).meta_graph().signature("serving_default"), seed=3)
    reference = tf1_run(base / "1", "serving_default", feeds)
    result = edit(base, [RemoveOutput("serving_default", "output_0"), RenameAlias("serving_default", "output_1", "a")])
    loaded = assert_loaders_agree(result.path)
    for got in (tf1_run(result.path, "serving_default", feeds), run_tf2(loaded, "serving_default", feeds)):
        np.testing.assert_allclose(got["a"], reference["output_1"], rtol=1e-6)


def test_set_default_variants(writable_copy) -> None:
    base = writable_copy("tf2_module")
    with pytest.raises(NameCollision, match="--previous"):
        edit(base, [SetDefault("double")])
    swapped = edit(base, [SetDefault("double", previous="double")])  # swap the two
    loaded = assert_loaders_agree(swapped.path)
    assert run_tf2(loaded, "serving_default", {"x": np.array([2.0], np.float32)})["y"].tolist() == [12.0]
    assert sorted(run_tf2(loaded, "double", {"a": A, "b": B})) == ["output", "score"]
    kept = edit(base / "1", [SetDefault("double", drop_previous=True, keep=True)], target=PublishTarget(base=base))
    assert tf1_view(kept.path) == {"double": (["x"], ["y"]), "serving_default": (["x"], ["y"])}
    assert_loaders_agree(kept.path)


def test_shared_signature_function_is_cloned_before_an_edit(writable_copy) -> None:
    """After set-default --keep two keys share one function: renaming in one must not touch the other."""
    base = writable_copy("tf2_module")
    result = edit(base, [
        SetDefault("double", previous="serve", keep=True),
        RenameAlias("serving_default", "x", "value"),
        RenameAlias("serving_default", "y", "doubled"),
    ])  # fmt: skip
    loaded = assert_loaders_agree(result.path)
    x = np.array([1.5, 2.0], np.float32)
    assert run_tf2(loaded, "double", {"x": x})["y"].tolist() == [9.0, 12.0]
    assert run_tf2(loaded, "serving_default", {"value": x})["doubled"].tolist() == [9.0, 12.0]
    assert tf1_run(result.path, "double", {"x": x})["y"].tolist() == [9.0, 12.0]
    assert tf1_run(result.path, "serving_default", {"value": x})["doubled"].tolist() == [9.0, 12.0]


def test_keras_export_renames(writable_copy) -> None:
    base = writable_copy("keras_mlp")
    features = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    reference = tf1_run(base / "1", "serving_default", {"features": features})["output_0"]
    result = edit(base, [RemoveSignature("serve"), RenameAlias("serving_default", "output_0", "probs"),
                         RenameAlias("serving_default", "features", "x")])  # fmt: skip
    loaded = assert_loaders_agree(result.path)
    np.testing.assert_allclose(run_tf2(loaded, "serving_default", {"x": features})["probs"], reference, rtol=1e-6)


# --------------------------------------------------------------------------- TF1 exports, new tensors


def test_add_signature_output_and_repoint_tf1(writable_copy) -> None:
    base = writable_copy("tf1_image")
    image = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    temperature = np.array([1.0, 2.0], np.float32)
    reference = tf1_run(base / "1", "serving_default", {"image": image, "temperature": temperature})
    result = edit(base, [
        AddOutput("serving_default", "embedding", "Mean:0"),
        AddSignature("embed", {"image": "image:0"}, {"embedding": "Mean", "logits": "logits:0"}),
        Repoint("serving_default", "probs", "MatMul:0"),
    ])  # fmt: skip
    assert result.report.warnings == []  # MatMul:0 has the shape of probs
    meta = read(result.path).meta_graph()
    embedding = meta.signature("embed").output("embedding")
    assert (embedding.dtype, embedding.shape, embedding.name) == ("DT_FLOAT", (-1, 4), "Mean:0")
    statuses = {s.key: (s.status, {o.alias: o.status for o in s.outputs}) for s in result.verification.signatures}
    assert statuses["serving_default"] == ("compared", {"embedding": "changed", "logits": "identical",
                                                        "probs": "changed"})  # fmt: skip
    assert statuses["embed"][0] == "new_only"
    got = tf1_run(result.path, "serving_default", {"image": image, "temperature": temperature})
    np.testing.assert_allclose(got["logits"], reference["logits"], rtol=1e-6)
    embed = tf1_run(result.path, "embed", {"image": image})
    assert embed["embedding"].shape == (2, 4)
    np.testing.assert_allclose(embed["logits"], reference["logits"], rtol=1e-6)
    assert_loaders_agree(result.path)  # a TF1 export loads under tf.saved_model.load too


def test_repoint_shape_change_is_a_warning(writable_copy) -> None:
    base = writable_copy("tf1_image")
    result = edit(base, [Repoint("serving_default", "probs", "Mean:0")])
    assert any("changes shape" in w and "(-1, 3) -> (-1, 4)" in w for w in result.report.warnings)


def test_tf2_edit_needing_new_computation_is_refused_unless_object_graph_dropped(writable_copy) -> None:
    base = writable_copy(REALMODELS / "saved_model_half_plus_two_tf2_cpu")
    before = tree_digest(base)
    with pytest.raises(UnsupportedModel, match="drop-object-graph"):
        edit(base, [AddOutput("serving_default", "x_again", "serving_default_x:0")])
    assert tree_digest(base) == before
    result = edit(base, [AddOutput("serving_default", "x_again", "serving_default_x:0")], drop_object_graph=True)
    meta = read(result.path).meta_graph()
    assert meta.kind == "tf1" and "__saved_model_init_op" not in meta.proto.signature_def
    loaded = assert_loaders_agree(result.path)  # variables restored through saver_def, asset init op runs
    x = np.array([3.0], np.float32)
    for got in (tf1_run(result.path, "serving_default", {"x": x}), run_tf2(loaded, "serving_default", {"x": x})):
        assert got["y"].tolist() == [3.5] and got["x_again"].tolist() == [3.0]


def test_stateful_counter_rename_compares_fresh_loads_in_order(writable_copy) -> None:
    base = writable_copy(REALMODELS / "saved_model_counter")
    result = edit(base, [RenameSignature("get_counter", "zz_get"), RenameAlias("incr_counter", "output", "value")])
    statuses = {s.key: s.status for s in result.verification.signatures}
    # Only incr_counter changed (an alias); the others are byte-identical to the source and not run.
    assert statuses == {"incr_counter": "compared", "incr_counter_by": "untouched", "reset_counter": "untouched",
                        "zz_get": "untouched"}  # fmt: skip
    with load_session(result.path, ["serve"]) as session:
        assert float(session.run("incr_counter", {})["value"]) == 1.0
        assert float(session.run("incr_counter", {})["value"]) == 2.0
        assert float(session.run("zz_get", {})["output"]) == 2.0


def test_real_models_rename_and_verify(writable_copy) -> None:
    for name in ("tfjs_module_with_multiple_signatures", "java_saved_model_using_python", "tf1_lookup"):
        source = REALMODELS / name if (REALMODELS / name).exists() else name
        base = writable_copy(source)
        if read(base).ref.base is None:
            base = writable_copy(source, f"{name}_base/1").parent
        meta = read(base).meta_graph()
        first = meta.signatures()[0]
        edits: list[Edit] = [RenameSignature(first.key, "zz_first")]
        if first.outputs:
            edits.append(RenameAlias("zz_first", first.outputs[0].alias, "a_out"))
        result = edit(base, edits)
        assert result.verification.ok, (name, result.verification.failures())
        assert any(s.key == "zz_first" and s.old_key == first.key for s in result.verification.signatures)
        if meta.kind == "tf2":
            assert_loaders_agree(result.path)


# --------------------------------------------------------------------------- publishing


def test_links_shards_copies_index_and_respects_version_and_out(writable_copy, tmp_path) -> None:
    base = writable_copy("tf2_module")
    source_shard = base / "1" / "variables" / "variables.data-00000-of-00001"
    linked = edit(base, [RenameSignature("double", "twice")], target=PublishTarget(version=7, verify=False))
    assert linked.path == base / "7"
    assert os.stat(linked.path / "variables" / source_shard.name).st_ino == source_shard.stat().st_ino
    assert (
        os.stat(linked.path / "variables" / "variables.index").st_ino
        != (base / "1" / "variables" / "variables.index").stat().st_ino
    )
    elsewhere = PublishTarget(base=tmp_path / "elsewhere", link=False)
    copied = edit(base / "1", [RenameSignature("double", "twice")], target=elsewhere)
    assert copied.path == tmp_path / "elsewhere" / "1"
    assert os.stat(copied.path / "variables" / source_shard.name).st_ino != source_shard.stat().st_ino
    assert copied.published.carried.linked == []


class _SilentRepoint(Edit):
    """An edit that changes what a signature computes without saying so (as a buggy edit would)."""

    op = "silent_repoint"

    def apply(self, meta) -> EditReport:
        meta.signature_def["prediction"].outputs["y"].name = "MatMul:0"
        return EditReport()


def test_verification_mismatch_publishes_nothing(writable_copy) -> None:
    base = writable_copy("tf1_linear")
    before = tree_digest(base)
    with pytest.raises(VerificationFailed, match="'y' of 'prediction' differs"):
        edit(base, [_SilentRepoint()])
    assert tree_digest(base) == before and no_staging_left(base)


def test_bad_edits_write_nothing(writable_copy) -> None:
    base = writable_copy("tf2_module")
    before = tree_digest(base)
    for edits, error in [
        ([RenameSignature("double", "serving_default")], NameCollision),
        ([RemoveSignature("double"), RemoveSignature("serving_default")], InvalidEdit),
        ([RemoveOutput("double", "y")], InvalidEdit),
        ([], InvalidEdit),
    ]:
        with pytest.raises(error):
            edit(base, edits)
    assert tree_digest(base) == before and no_staging_left(base)


def test_model_no_loader_can_load(writable_copy) -> None:
    """TF-DF custom ops are missing here: compare is an error, an edit is published with a note."""
    from smsurgery.core.errors import LoaderFailed
    from smsurgery.graph.verify import compare

    source = REALMODELS / "tfdf_adult_rf_custom_ops"
    with pytest.raises(LoaderFailed, match="SimpleMLCreateModelResource"):
        compare(source, source)
    base = writable_copy(source, "tfdf/1").parent
    result = edit(base, [RenameSignature("serving_default", "predict")])
    # A rename leaves every signature untouched: only the new version is loaded, and it cannot be.
    assert any("the TF1 loader cannot load B" in n for n in result.verification.notes)
    assert read(base).meta_graph().signature_keys() == ["predict"]
