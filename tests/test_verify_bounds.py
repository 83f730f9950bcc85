"""Bounded verification: run only what an edit could have changed; refuse what cannot fit in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsurgery.core.model import read
from smsurgery.edits.draft import Lineage, edit
from smsurgery.edits.kinds import AddOutput, RenameAlias, RenameSignature
from smsurgery.publishing import memoryguard
from smsurgery.publishing.target import PublishTarget
from smsurgery.publishing.verify_scope import untouched_signatures
from tests.conftest import (
    FIXTURE_MODELS,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
    tree_digest,
)

MODELS = [FIXTURE_MODELS / n for n in fixture_model_names()] + [REALMODELS / n for n in real_model_names()]


def _published(base: Path, edits: list) -> tuple[Path, list]:  # type: ignore[type-arg]
    """Publish `edits` unverified; return the new version and the verification pairs of the edit."""
    result = edit(base, edits, target=PublishTarget(verify=False))
    meta = read(base / "1").meta_graph().proto
    work = type(meta)()
    work.CopyFrom(meta)
    lineage = Lineage(work)
    for item in edits:
        for change in item.apply(work).changes:
            lineage.fold(change)
    return result.path, lineage.pairs(work)  # type: ignore[return-value]


@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_node_count_from_the_wire_equals_the_parsed_graph(folder: Path) -> None:
    model = read(folder)
    for position in range(len(model.tag_sets)):
        assert memoryguard.count_nodes(model.skimmed, position) == len(model.graph_def(position).node)


def test_a_rename_leaves_every_signature_untouched(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf2_module")
    new, pairs = _published(base, [RenameSignature("serving_default", "predict")])
    keys = {p.new for p in pairs}
    assert untouched_signatures(base / "1", new, ("serve",), pairs) == keys


def test_an_alias_rename_touches_its_signature_only(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_lookup")
    keys = read(base).meta_graph().signature_keys()
    alias = read(base).meta_graph().signature(keys[0]).outputs[0].alias
    new, pairs = _published(base, [RenameAlias(keys[0], alias, "renamed", side="outputs")])
    assert untouched_signatures(base / "1", new, ("serve",), pairs) == set(keys) - {keys[0]}


def test_a_graph_that_changed_proves_nothing(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_linear")
    key = read(base).meta_graph().signature_keys()[0]
    new, pairs = _published(base, [RenameSignature(key, "renamed")])
    pb = new / "saved_model.pb"
    assert untouched_signatures(base / "1", new, ("serve",), pairs) == {"renamed"}
    full = read(new, full=True).proto
    full.meta_graphs[0].graph_def.versions.producer += 1
    pb.write_bytes(full.SerializeToString(deterministic=True))
    assert untouched_signatures(base / "1", new, ("serve",), pairs) == set()


def test_an_added_output_is_run(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_image")
    new, pairs = _published(base, [AddOutput("serving_default", "embedding", "Mean:0")])
    untouched = untouched_signatures(base / "1", new, ("serve",), pairs)
    assert "serving_default" not in untouched


def test_estimate_grows_with_nodes_graph_and_variables() -> None:
    small = memoryguard.LoadEstimate(nodes=10, graph_bytes=1000, variable_bytes=0)
    assert memoryguard.LoadEstimate(nodes=10**6, graph_bytes=1000, variable_bytes=0).bytes > small.bytes + (5 << 30)
    assert memoryguard.LoadEstimate(nodes=10, graph_bytes=1 << 30, variable_bytes=0).bytes > small.bytes + (4 << 30)
    assert memoryguard.LoadEstimate(nodes=10, graph_bytes=1000, variable_bytes=1 << 30).bytes > small.bytes + (1 << 30)


def test_available_memory_honours_the_user_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    free = memoryguard.available_bytes()
    assert free is not None and free > 0
    monkeypatch.setenv(memoryguard.LIMIT_VARIABLE, "300M")
    assert memoryguard.available_bytes() == 300 << 20


def test_verification_that_cannot_fit_is_refused_in_one_line(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_linear")
    key = read(base).meta_graph().signature_keys()[0]
    before = tree_digest(base)
    limited = {memoryguard.LIMIT_VARIABLE: "100M"}
    result = run_cli("signature", "rename", base, key, "renamed", env=limited)
    assert_one_line_error(result, "memory", "--no-verify")
    assert tree_digest(base) == before  # nothing written: no staging folder, no version
    published = run_cli("signature", "rename", base, key, "renamed", "--no-verify", env=limited)
    assert published.code == 0, published.stderr
    assert read(base / "2").meta_graph().signature_keys() == ["renamed"]


@pytest.mark.slow
def test_verified_rename_loads_the_new_version_and_reports_untouched(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf2_module")
    result = edit(base, [RenameSignature("serving_default", "predict")])
    report = result.verification
    assert report.ok and {s.key: s.status for s in report.signatures} == {"double": "untouched", "predict": "untouched"}
    assert any("not run: double, predict" in note for note in report.notes)
    assert not report.errors  # tf.saved_model.load of the new version lists the same keys


@pytest.mark.slow
def test_verified_alias_rename_still_compares_that_signature(model_copy) -> None:  # type: ignore[no-untyped-def]
    base = model_copy("tf1_lookup")
    keys = read(base).meta_graph().signature_keys()
    alias = read(base).meta_graph().signature(keys[0]).outputs[0].alias
    result = edit(base, [RenameAlias(keys[0], alias, "renamed", side="outputs")])
    statuses = {s.key: s.status for s in result.verification.signatures}
    assert statuses[keys[0]] in ("compared", "both_fail")
    assert all(statuses[k] == "untouched" for k in keys[1:])
