"""The lean graph parse behind `scan` (smsurgery/core/lean_graph.py) against the full parse.

A lean graph keeps each node's name, op and inputs and leaves the rest as
unknown bytes; `full_node` makes a node whole again. These tests hold it to
the full `tensorflow.GraphDef` parse: node for node on every fixture and
real model and on hand-written wire forms (repeated fields, fields out of
order, unknown field numbers), and `scan`'s whole report (which walks the
lean graph) equal to the report from a full parse on every model, every
scan-evasion case and random nests of functions. Damage inside a node's
attributes: refused as before when scan reads that node, not seen when it
does not (the one thing a lean parse does not check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import message as pb_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsurgery.core import protos
from smsurgery.core.lean_graph import full_function, full_node, is_lean, lean_graph_class, lean_graph_def
from smsurgery.core.lean_spans import split_graph_def
from smsurgery.core.model import read
from smsurgery.core.skim import graph_def_bytes
from smsurgery.inspect.scan import scan, scan_meta_graph, scan_model
from tests.conftest import (
    FIXTURE_MODELS,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
)
from tests.hostile.scan_corpus import CASES, ENTRIES, LINKS, MAX_LINKS, OPAQUE, RISKY, ScanCase, build, make_scan_case

MODELS = [FIXTURE_MODELS / n for n in fixture_model_names()] + [REALMODELS / n for n in real_model_names()]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value >> 7 else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _write(root: Path, graph: bytes, *, signature_output: str = "y:0") -> Path:
    """A one-meta-graph SavedModel around raw GraphDef bytes; returns the version folder."""
    meta = protos.meta_graph_class()()
    meta.meta_info_def.tags.append("serve")
    meta.signature_def["serving_default"].outputs["y"].name = signature_output
    small = meta.SerializeToString(deterministic=True)
    version = root / "model" / "1"
    version.mkdir(parents=True)
    body = _field(2, graph) + small
    (version / "saved_model.pb").write_bytes(_varint(1 << 3) + _varint(1) + _field(2, body))
    return version


def _assert_lean_equals_full(lean: Any, full: Any) -> None:
    assert len(lean.node) == len(full.node)
    for lean_node, full_node_def in zip(lean.node, full.node, strict=True):
        assert is_lean(lean_node)
        assert (lean_node.name, lean_node.op, list(lean_node.input)) == (
            full_node_def.name,
            full_node_def.op,
            list(full_node_def.input),
        )
        assert full_node(lean_node) == full_node_def
    lean_functions, full_functions = lean.library.function, full.library.function
    assert len(lean_functions) == len(full_functions)
    for lean_function, full_function_def in zip(lean_functions, full_functions, strict=True):
        assert full_function(lean_function) == full_function_def
        assert lean_function.signature == full_function_def.signature
        assert dict(lean_function.attr) == dict(full_function_def.attr)
        nodes = [full_node(node) for node in lean_function.node_def]
        assert nodes == list(full_function_def.node_def)
    assert list(lean.library.gradient) == list(full.library.gradient)


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_lean_nodes_made_whole_equal_the_full_parse(path: Path) -> None:
    model = read(path)
    assert model.skimmed is not None
    for position, meta in enumerate(model.skimmed.file_layout.meta_graphs):
        full = protos.graph_def_class().FromString(graph_def_bytes(model.skimmed.data, meta))
        _assert_lean_equals_full(lean_graph_def(model.skimmed, position), full)


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_scan_of_the_lean_graph_equals_scan_of_the_full_parse(path: Path) -> None:
    assert scan(path) == scan_model(read(path, full=True))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_evasion_case_scans_the_same_lean_and_full(tmp_path: Path, case: ScanCase) -> None:
    version = make_scan_case(case, tmp_path)
    report = scan(version)
    assert report == scan_model(read(version, full=True))
    assert report["count"] == 1


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    placement=st.tuples(
        st.sampled_from(ENTRIES),
        st.lists(st.sampled_from(LINKS), max_size=MAX_LINKS),
        st.sampled_from([*RISKY, *OPAQUE]),
        st.integers(0, 3),
    )
)
def test_random_nests_scan_the_same_lean_and_full(tmp_path_factory: Any, placement: Any) -> None:
    entry, links, risky, decoys = placement
    meta, _embedded = build(entry, links, risky, decoys)
    model = protos.saved_model_class()(saved_model_schema_version=1)
    model.meta_graphs.add().CopyFrom(meta)
    version = tmp_path_factory.mktemp("nest") / "1"
    version.mkdir()
    (version / "saved_model.pb").write_bytes(model.SerializeToString(deterministic=True))
    assert scan(version) == scan_model(read(version, full=True))
    _scan_split_equals_full(version)


def _attr_entry(key: str, value: bytes) -> bytes:
    return _field(5, _field(1, key.encode()) + _field(2, value))


def test_wire_forms_round_trip_field_for_field(tmp_path: Path) -> None:
    """Repeated singular fields end on their last value, map keys on their last entry, unknown fields stay."""
    type_float = b"\x30\x01"  # AttrValue.type = DT_FLOAT
    type_int = b"\x30\x03"
    twice = (
        _attr_entry("T", type_int)
        + _field(1, b"first")
        + _field(2, b"Const")
        + _field(3, b"x")
        + _field(4, b"/cpu:0")
        + _attr_entry("T", type_float)
        + _field(99, b"unknown field")
        + _field(2, b"Identity")
        + _field(1, b"y")
        + _field(3, b"^x")
    )
    graph = _field(1, _field(1, b"x") + _field(2, b"Placeholder")) + _field(1, twice) + _field(4, b"\x08\x01")
    version = _write(tmp_path, graph)
    model = read(version)
    lean = lean_graph_def(model.skimmed, 0)
    _assert_lean_equals_full(lean, protos.graph_def_class().FromString(graph))
    whole = full_node(lean.node[1])
    assert (whole.name, whole.op, list(whole.input), whole.attr["T"].type) == ("y", "Identity", ["x", "^x"], 1)
    assert scan(version) == scan_model(read(version, full=True))


def test_a_lean_graph_is_a_graph_def_for_the_walk() -> None:
    """Names, ops, inputs; functions' signatures, attrs and bodies; gradients: what ScanGraph reads of a graph."""
    graph = lean_graph_class()()
    node = graph.node.add(name="a", op="PartitionedCall", input=["x", "^y"])
    function = graph.library.function.add()
    function.signature.name = "f"
    function.attr["api_implements"].s = b"lstm"
    function.node_def.add(name="n", op="NoOp")
    graph.library.gradient.add(function_name="f", gradient_func="g")
    assert is_lean(node) and not is_lean(full_node(node)) and full_node(node).name == "a"
    whole = full_function(function)
    assert (whole.signature.name, whole.attr["api_implements"].s, whole.node_def[0].op) == ("f", b"lstm", "NoOp")
    assert function.signature.DESCRIPTOR.full_name == "tensorflow.OpDef"


def test_function_wire_forms_round_trip(tmp_path: Path) -> None:
    """A function's ret, control_ret and arg_attr maps, unparsed by the lean parse, come back whole."""
    function = protos.message_class("tensorflow/core/framework/function.proto", "tensorflow.FunctionDef")()
    function.signature.name = "f"
    function.signature.output_arg.add(name="out", type=1)
    function.node_def.add(name="w", op="WriteFile", input=["a", "b"]).attr["T"].type = 1
    function.ret["out"] = "w:0"
    function.control_ret["c"] = "w"
    function.arg_attr[0].attr["_shape"].s = b"x"
    function.resource_arg_unique_id[0] = 3
    library = _field(1, function.SerializeToString()) + _field(2, _field(1, b"f") + _field(2, b"f_grad"))
    call = (
        _field(1, b"y")
        + _field(2, b"PartitionedCall")
        + _field(3, b"x")
        + _attr_entry("f", _field(10, _field(1, b"f")))
    )
    graph = _field(1, _field(1, b"x") + _field(2, b"Placeholder")) + _field(1, call) + _field(2, library)
    version = _write(tmp_path, graph)
    _assert_lean_equals_full(lean_graph_def(read(version).skimmed, 0), protos.graph_def_class().FromString(graph))
    report = scan(version)
    assert report == scan_model(read(version, full=True))
    assert [f["node"] for f in report["meta_graphs"][0]["signatures"]["serving_default"]] == ["w"]


_BROKEN_ATTR = _field(5, b"\x0a\x05A")  # an attr entry whose key claims 5 bytes and has 1


def test_damage_in_a_node_scan_reads_is_refused_as_before(tmp_path: Path) -> None:
    node = _field(1, b"w") + _field(2, b"WriteFile") + _field(3, b"x") + _field(3, b"x") + _BROKEN_ATTR
    graph = _field(1, _field(1, b"x") + _field(2, b"Placeholder")) + _field(1, node)
    version = _write(tmp_path, graph)
    before = run_cli("scan", version)
    assert_one_line_error(before, "not a valid SavedModel")
    with pytest.raises(Exception, match="not a valid SavedModel"):
        scan_model(read(version, full=True))


def test_damage_in_a_node_scan_never_reads_is_not_seen(tmp_path: Path) -> None:
    """A plain node's attributes are never parsed: scan judges its op; `show --ops` still refuses the graph."""
    node = _field(1, b"c") + _field(2, b"Const") + _BROKEN_ATTR
    graph = _field(1, _field(1, b"x") + _field(2, b"Placeholder")) + _field(1, node)
    version = _write(tmp_path, graph)
    report = scan(version)
    assert report["clean"] and report["count"] == 0
    assert_one_line_error(run_cli("show", version, "--ops"), "not a valid SavedModel")


# ---- big nodes left in the file (core/lean_spans.py), with thresholds low enough for small models ----

SPLITS = [{"big_graph": 0, "big_node": 0}, {"big_graph": 0, "big_node": 200}]


def _split(version: Path, position: int = 0, **limits: int) -> Any:
    graph = split_graph_def(read(version).skimmed, position, **limits)
    assert graph is not None
    return graph


def _scan_split_equals_full(version: Path) -> None:
    full = read(version, full=True)
    for limits in SPLITS:
        for position, meta in enumerate(full.proto.meta_graphs):
            split = _split(version, position, **limits)
            _assert_lean_equals_full(split, meta.graph_def)
            assert scan_meta_graph(meta, graph_def=split).to_json() == scan_meta_graph(meta).to_json()


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_big_nodes_left_in_the_file_scan_as_the_full_parse(path: Path) -> None:
    version = read(path).ref.version_dir
    _scan_split_equals_full(version)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_evasion_case_scans_the_same_split(tmp_path: Path, case: ScanCase) -> None:
    _scan_split_equals_full(make_scan_case(case, tmp_path))


def test_split_wire_forms_and_refusals(tmp_path: Path) -> None:
    """Odd wire forms as the full parse reads them; None (parse lean at once) when the walk cannot answer."""
    big = _field(1, b"w") + _field(2, b"Const") + _attr_entry("value", _field(2, b"\x00" * 5000)) + _field(3, b"x")
    graph = (
        _field(1, _field(1, b"x") + _field(2, b"Placeholder"))
        + b"\x08\x05"  # field 1 as a varint: unknown to protobuf, skipped by the walk
        + _field(1, big + _field(1, b"renamed") + _field(99, b"?"))
        + _field(4, b"\x08\x01")
    )
    version = _write(tmp_path, graph)
    full = protos.graph_def_class().FromString(graph)
    for limits in SPLITS:
        split = _split(version, **limits)
        _assert_lean_equals_full(split, full)
        assert [type(node).__name__ for node in split.node][1] == "SpannedNode"
    skimmed = read(version).skimmed
    assert split_graph_def(skimmed, 0) is None  # small graph: parsed lean at once
    assert split_graph_def(skimmed, 0, big_graph=0, max_fields=2) is None  # many fields: parsed lean at once
    grouped = _write(tmp_path / "g", _field(1, _field(1, b"x") + _field(2, b"P")) + b"\x0b\x0c")  # a group
    assert split_graph_def(read(grouped).skimmed, 0, big_graph=0) is None
    too_big = _write(tmp_path / "n", _field(1, b"\x12\x01P") + _varint(1 << 32 | 2) + b"\x00")  # field 2**29
    assert split_graph_def(read(too_big).skimmed, 0, big_graph=0) is None
    assert_one_line_error(run_cli("scan", too_big), "not a valid SavedModel")


def test_damage_in_a_big_node_scan_reads_raises_for_the_full_parse(tmp_path: Path) -> None:
    node = _field(1, b"w") + _field(2, b"WriteFile") + _field(3, b"x") + _field(3, b"x") + _BROKEN_ATTR
    graph = _field(1, _field(1, b"x") + _field(2, b"Placeholder")) + _field(1, node)
    version = _write(tmp_path, graph)
    split = _split(version, big_graph=0, big_node=0)
    with pytest.raises(pb_message.DecodeError):
        full_node(split.node[1])
    with pytest.raises(pb_message.DecodeError):  # scan_model then falls back to the full parse, which refuses
        scan_meta_graph(read(version).skim.meta_graphs[0], graph_def=split)
