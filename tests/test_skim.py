"""Skimmed reads answer exactly what full parses answer, on every fixture and real model.

`read` walks the wire format and parses everything but `graph_def`; the
graph is parsed only when asked. These tests compare each read command's
output on a skimmed model with the same command on a fully parsed one, and
check the walk's fallbacks (text format, damaged bytes) and its laziness.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from smsurgery.core import protos, skim
from smsurgery.core.errors import CorruptModel, SmsurgeryError
from smsurgery.core.model import SavedModelFile, parse_saved_model, read
from smsurgery.inspect.describe import describe_model
from smsurgery.inspect.diff import compare_models
from smsurgery.serving.request_body import build_request
from tests.conftest import FIXTURE_MODELS, REALMODELS, fixture_model_names, real_model_names, run_cli

MODELS = [FIXTURE_MODELS / n for n in fixture_model_names()] + [REALMODELS / n for n in real_model_names()]


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _meta_tags(model: SavedModelFile) -> list[tuple[str, ...]]:
    return list(model.tag_sets)


@pytest.mark.parametrize("folder", MODELS, ids=_ids(MODELS))
def test_skimmed_small_fields_equal_the_full_parse_without_graphs(folder: Path) -> None:
    model = read(folder)
    assert model.skimmed is not None, "every binary saved_model.pb here is skimmed"
    full = parse_saved_model(model.ref.saved_model_file)
    for meta in full.meta_graphs:
        meta.ClearField("graph_def")
    assert model.skim == full


@pytest.mark.parametrize("folder", MODELS, ids=_ids(MODELS))
def test_show_json_is_identical_skimmed_and_full(folder: Path) -> None:
    skimmed, full = read(folder), read(folder, full=True)
    for tags in _meta_tags(full):
        assert describe_model(skimmed, tags=tags, ops=True) == describe_model(full, tags=tags, ops=True)


@pytest.mark.parametrize("folder", MODELS, ids=_ids(MODELS))
def test_diff_is_identical_skimmed_and_full(folder: Path) -> None:
    for tags in _meta_tags(read(folder, full=True)):
        skimmed = compare_models(read(folder), read(folder), tags=tags).to_json()
        full = compare_models(read(folder, full=True), read(folder, full=True), tags=tags).to_json()
        assert skimmed == full


@pytest.mark.parametrize("folder", MODELS, ids=_ids(MODELS))
def test_request_examples_are_identical_skimmed_and_full(folder: Path) -> None:
    full_model = read(folder, full=True)
    for tags in _meta_tags(full_model):
        for key in full_model.meta_graph(tags).signature_keys():
            answers = []
            for model in (read(folder), read(folder, full=True)):
                try:
                    built = build_request(model, tags=tags, signature=key)
                    answers.append(json.dumps([built.body, built.notes, built.format], sort_keys=True, default=str))
                except SmsurgeryError as error:
                    answers.append(f"{type(error).__name__}: {error}")
            assert answers[0] == answers[1], (tags, key)


def test_show_without_graph_warnings_does_not_parse_the_graph() -> None:
    """The small fields come from the skim; only show's graph-based warnings (devices, restores) read the graph."""
    model = read(FIXTURE_MODELS / "tf1_linear")
    meta = model.meta_graph()
    assert meta.signature_keys() and model.variables() is not None
    assert model._proto is None and not model._graphs


def test_ops_parse_the_graph_once() -> None:
    model = read(FIXTURE_MODELS / "tf2_module")
    meta = model.meta_graph()
    first = meta.graph_def
    meta.op_histogram()
    assert meta.graph_def is first and model._proto is None


def test_text_format_falls_back_to_the_full_parse(tmp_path: Path) -> None:
    from google.protobuf import text_format

    version = tmp_path / "m" / "1"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear" / "1", version)
    saved = parse_saved_model(version / "saved_model.pb")
    (version / "saved_model.pb").unlink()
    (version / "saved_model.pbtxt").write_text(text_format.MessageToString(saved))
    model = read(version)
    assert model.skimmed is None
    assert describe_model(model) == describe_model(read(FIXTURE_MODELS / "tf1_linear" / "1")) | {
        "path": str(version), "base": str(version.parent), "versions": [1], "format": "saved_model.pbtxt",
    }  # fmt: skip


@pytest.mark.parametrize("cut", [1, 7, 100])
def test_truncated_file_is_the_same_clear_error(tmp_path: Path, cut: int) -> None:
    version = tmp_path / "m" / "1"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear" / "1", version)
    pb = version / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:-cut])
    assert skim.skim(pb) is None
    with pytest.raises(CorruptModel, match="not a valid SavedModel"):
        read(version)
    result = run_cli("show", version)
    assert result.code == 2 and "not a valid SavedModel" in result.stderr


def test_damaged_graph_bytes_are_reported_when_the_graph_is_read(tmp_path: Path) -> None:
    version = tmp_path / "m" / "1"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear" / "1", version)
    pb = version / "saved_model.pb"
    data = bytearray(pb.read_bytes())
    graph = skim.layout(bytes(data)).meta_graphs[0].graph_spans[0]  # type: ignore[union-attr]
    data[graph.body : graph.body + 2] = b"\x0f\x0f"  # a group start tag: not a GraphDef
    pb.write_bytes(bytes(data))
    model = read(version)
    assert model.meta_graph().signature_keys()  # the small fields read without the graph
    with pytest.raises(CorruptModel, match="not a valid SavedModel"):
        model.meta_graph().op_histogram()


def test_layout_records_fields_in_file_order() -> None:
    data = (FIXTURE_MODELS / "tf1_linear" / "1" / "saved_model.pb").read_bytes()
    found = skim.layout(data)
    assert found is not None and found.size == len(data)
    meta = found.meta_graphs[0]
    assert [f.number for f in meta.fields][:2] == [1, 2]
    graph = protos.graph_def_class().FromString(skim.graph_def_bytes(data, meta))
    assert graph == parse_saved_model(FIXTURE_MODELS / "tf1_linear" / "1" / "saved_model.pb").meta_graphs[0].graph_def
