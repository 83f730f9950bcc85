"""`smsurgery diff`: a verdict per change and an exit status a CI job can gate on.

Fixture pairs are built by copying a model into a two-version base and
editing the second version's `saved_model.pb` with the protobuf API: cheap,
and exactly the change under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smsurgery import SavedModelFile, read
from smsurgery.core.errors import (
    CorruptModel,
    NotASavedModel,
    PathNotFound,
    SignatureNotFound,
    TagSetNotFound,
    VersionNotFound,
)
from smsurgery.core.layout import resolve
from smsurgery.core.model import parse_saved_model
from smsurgery.inspect.diff import DIFF_SCHEMA, compare_models, diff, shape_change
from smsurgery.inspect.diff_changes import BREAKING, COMPATIBLE, INTERNAL, Change, exit_status
from tests.conftest import (
    FIXTURE_MODELS,
    REALMODELS,
    assert_one_line_error,
    fixture_model_names,
    real_model_names,
    run_cli,
)

B, C, I = BREAKING, COMPATIBLE, INTERNAL  # noqa: E741 - short names keep the case table readable
ALL_MODELS = [REALMODELS / n for n in real_model_names()] + [FIXTURE_MODELS / n for n in fixture_model_names()]
HALF_PLUS_TWO = REALMODELS / "saved_model_half_plus_two_cpu"
Edit = Callable[[Any], None]


def two_versions(tmp_path: Path, source: Path, edit: Edit | None = None, *, new_version: int = 2) -> Path:
    """A model base: version 1 = source's newest version, `new_version` = a copy with `edit` applied."""
    version_dir = resolve(source).version_dir
    base = tmp_path / "base"
    shutil.copytree(version_dir, base / "1")
    new = base / str(new_version)
    shutil.copytree(version_dir, new)
    if edit is not None:
        proto = parse_saved_model(new / "saved_model.pb")
        edit(proto)
        (new / "saved_model.pb").write_bytes(proto.SerializeToString(deterministic=True))
    return base


def rows(changes: list[Change]) -> list[tuple[Any, ...]]:
    return [(c.kind, c.signature, c.alias or c.name, c.field, c.verdict) for c in changes]


def _sig(key: str) -> Callable[[Any], Any]:
    return lambda proto: proto.meta_graphs[0].signature_def[key]


SD, DOUBLE = _sig("serving_default"), _sig("double")


def _move(mapping: Any, old: str, new: str) -> None:
    mapping[new].CopyFrom(mapping[old])
    del mapping[old]


def _set_shape(info: Any, dims: list[int] | None) -> None:
    info.tensor_shape.Clear()
    if dims is None:
        info.tensor_shape.unknown_rank = True
    for size in dims or []:
        info.tensor_shape.dim.add().size = size


def _to_sparse(info: Any) -> None:
    info.coo_sparse.values_tensor_name = "v:0"
    info.coo_sparse.indices_tensor_name = "i:0"
    info.coo_sparse.dense_shape_tensor_name = "s:0"


def _add_tag_set(proto: Any) -> None:
    extra = proto.meta_graphs.add()
    extra.CopyFrom(proto.meta_graphs[0])
    extra.meta_info_def.tags.append("gpu")


TF2 = FIXTURE_MODELS / "tf2_module"
# name: (source, edit of the new version, expected (kind, signature, alias/name, field, verdict) rows, exit status)
CASES: dict[str, tuple[Path, Edit, list[tuple[Any, ...]], int]] = {
    "signature removed": (
        TF2,
        lambda p: p.meta_graphs[0].signature_def.pop("double"),
        [("signature_removed", "double", None, None, B)],
        3,
    ),
    "signature added": (
        TF2,
        lambda p: p.meta_graphs[0].signature_def["triple"].CopyFrom(DOUBLE(p)),
        [("signature_added", "triple", None, None, C)],
        1,
    ),
    "signature renamed": (
        TF2,
        lambda p: _move(p.meta_graphs[0].signature_def, "double", "times_six"),
        [("signature_removed", "double", None, None, B), ("signature_added", "times_six", None, None, B)],
        3,
    ),
    "default signature removed": (
        TF2,
        lambda p: _move(p.meta_graphs[0].signature_def, "serving_default", "predict"),
        [
            ("default_signature_removed", None, None, "default_signature", B),
            ("signature_added", "predict", None, None, B),
            ("signature_removed", "serving_default", None, None, B),
        ],
        3,
    ),
    "method changed": (
        TF2,
        lambda p: setattr(DOUBLE(p), "method_name", "tensorflow/serving/regress"),
        [("method_changed", "double", None, "method_name", B)],
        3,
    ),
    "input removed": (TF2, lambda p: SD(p).inputs.pop("b"), [("input_removed", "serving_default", "b", None, B)], 3),
    "new input": (
        TF2,
        lambda p: SD(p).inputs["c"].CopyFrom(SD(p).inputs["a"]),
        [("input_added", "serving_default", "c", None, B)],
        3,
    ),
    "input renamed": (
        TF2,
        lambda p: _move(SD(p).inputs, "a", "z"),
        [("input_removed", "serving_default", "a", None, B), ("input_added", "serving_default", "z", None, B)],
        3,
    ),
    "output removed": (
        TF2,
        lambda p: SD(p).outputs.pop("score"),
        [("output_removed", "serving_default", "score", None, B)],
        3,
    ),
    "output added": (
        TF2,
        lambda p: SD(p).outputs["extra"].CopyFrom(SD(p).outputs["score"]),
        [("output_added", "serving_default", "extra", None, C)],
        1,
    ),
    "output renamed": (
        TF2,
        lambda p: _move(SD(p).outputs, "score", "a_score"),
        [
            ("output_added", "serving_default", "a_score", None, B),
            ("output_removed", "serving_default", "score", None, B),
        ],
        3,
    ),
    "dtype changed": (
        TF2,
        lambda p: setattr(SD(p).inputs["a"], "dtype", 2),  # DT_DOUBLE
        [("input_changed", "serving_default", "a", "dtype", B)],
        3,
    ),
    "rank changed": (
        TF2,
        lambda p: _set_shape(SD(p).inputs["a"], [-1, 3, 1]),
        [("input_changed", "serving_default", "a", "shape", B)],
        3,
    ),
    "dim narrowed": (
        TF2,
        lambda p: _set_shape(SD(p).inputs["a"], [8, 3]),
        [("input_changed", "serving_default", "a", "shape", B)],
        3,
    ),
    "dim relaxed": (
        TF2,
        lambda p: _set_shape(SD(p).outputs["output"], [-1, -1]),
        [("output_changed", "serving_default", "output", "shape", C)],
        1,
    ),
    "fixed dim changed": (
        TF2,
        lambda p: _set_shape(SD(p).inputs["b"], [-1, 4]),
        [("input_changed", "serving_default", "b", "shape", B)],
        3,
    ),
    "rank relaxed to unknown": (
        TF2,
        lambda p: _set_shape(SD(p).inputs["a"], None),
        [("input_changed", "serving_default", "a", "shape", C)],
        1,
    ),
    "unknown rank narrowed": (
        REALMODELS / "tf2onnx_regression",
        lambda p: _set_shape(SD(p).inputs["X"], [-1, 3]),
        [("input_changed", "serving_default", "X", "shape", B)],
        3,
    ),
    "encoding changed": (
        TF2,
        lambda p: _to_sparse(SD(p).inputs["a"]),
        [("input_changed", "serving_default", "a", "encoding", B)],
        3,
    ),
    "tensor name only": (
        TF2,
        lambda p: setattr(SD(p).outputs["score"], "name", "renamed_tensor:0"),
        [("output_changed", "serving_default", "score", "name", I)],
        1,
    ),
    "init op changed": (
        REALMODELS / "saved_model_half_plus_two_tf2_cpu",
        lambda p: setattr(_sig("__saved_model_init_op")(p).outputs["__saved_model_init_op"], "name", "Other"),
        [("init_op_changed", None, "__saved_model_init_op", "name", I)],
        1,
    ),
    "tag set added": (TF2, _add_tag_set, [("tag_set_added", None, None, "tags", C)], 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verdict_per_case(tmp_path: Path, case: str) -> None:
    source, edit, expected, status = CASES[case]
    report = diff(two_versions(tmp_path, source, edit))  # diff BASE: version 2 against version 1
    assert rows(report.changes) == expected
    assert report.exit_status == status


def test_likely_renames_are_labelled_and_paired(tmp_path: Path) -> None:
    report = diff(two_versions(tmp_path, TF2, CASES["input renamed"][1]))
    removed, added = report.changes
    assert (removed.note, removed.counterpart) == ("renamed (likely)", "z")
    assert (added.note, added.counterpart) == ("renamed (likely)", "a")
    assert removed.old["dtype"] == "DT_FLOAT" and added.new["shape"] == [-1, 3]


def test_no_rename_guess_when_ambiguous(tmp_path: Path) -> None:
    def edit(proto: Any) -> None:  # a and b (same interface) both renamed: which went where is unknowable
        _move(SD(proto).inputs, "a", "x")
        _move(SD(proto).inputs, "b", "y")

    report = diff(two_versions(tmp_path, TF2, edit))
    assert [c.note for c in report.changes] == [None] * 4
    assert {c.verdict for c in report.changes} == {B}


def test_tag_set_removed_is_breaking(tmp_path: Path) -> None:
    base = two_versions(tmp_path, TF2, _add_tag_set)
    report = diff(f"{base}@2", f"{base}@1")
    assert rows(report.changes) == [("tag_set_removed", None, None, "tags", B)]
    assert report.changes[0].old == ["gpu", "serve"] and report.exit_status == 3


def test_compare_models_works_on_models_in_memory() -> None:
    """The library compares parsed models: an edit need not be written to be checked."""
    old = read(TF2)
    edited = type(old.proto).FromString(old.proto.SerializeToString())
    SD(edited).outputs.pop("output")
    report = compare_models(old, SavedModelFile(old.ref, edited))
    assert rows(report.changes) == [("output_removed", "serving_default", "output", None, B)]


def test_shape_rules() -> None:
    assert shape_change((-1, 3), (-1, 3)) is None
    assert shape_change(None, None) is None
    assert shape_change(None, (-1,))[0] == B
    assert shape_change((-1,), None)[0] == C
    assert shape_change((-1, 3), (-1, 3, 1))[0] == B
    assert shape_change((-1, 3), (4, 3)) == (B, "dim 0 narrowed -1 -> 4")
    assert shape_change((5, 3), (-1, 3)) == (C, "dim 0 relaxed 5 -> -1")
    assert shape_change((5, 3), (-1, 4)) == (B, "dim 0 relaxed 5 -> -1; dim 1 3 -> 4")
    assert shape_change((), (1,)) == (B, "rank 0 -> 1")


def test_exit_status_helper() -> None:
    assert exit_status([]) == 0
    assert exit_status([Change("file_added", I)]) == 1
    assert exit_status([Change("output_added", C), Change("file_added", I)]) == 1
    assert exit_status([Change("output_added", C), Change("input_added", B)]) == 3


# ---- real models ----


def test_every_model_against_itself_has_no_changes() -> None:
    assert ALL_MODELS, "no models found"
    for path in ALL_MODELS:
        report = diff(path, path, deep=True)
        assert (report.changes, report.exit_status, report.verdict) == ([], 0, "unchanged"), path


def test_half_plus_two_against_half_plus_three() -> None:
    report = diff(HALF_PLUS_TWO, REALMODELS / "saved_model_half_plus_three", deep=True)
    assert rows(report.changes) == [
        ("signature_removed", "classify_x_to_y", None, None, B),
        ("signature_removed", "regress_x2_to_y3", None, None, B),
        ("signature_removed", "regress_x_to_y", None, None, B),
        ("signature_removed", "regress_x_to_y2", None, None, B),
        ("input_changed", "serving_default", "x", "shape", B),
        ("output_changed", "serving_default", "y", "shape", B),
        ("signature_added", "tensorflow/serving/regress", None, None, C),
        ("variable_removed", None, "a2", None, I),
        ("variable_changed", None, "b", "values", I),  # b = 2 in half_plus_two, 3 in half_plus_three
        ("variable_removed", None, "c2", None, I),
    ]
    shape = report.changes[4]
    assert (shape.old, shape.new, shape.note) == ([-1, 1], [], "rank 2 -> 0")
    assert report.exit_status == 3 and report.summary() == {B: 6, C: 1, I: 3}


def test_tf1_against_tf2_export_of_the_same_function() -> None:
    report = diff(HALF_PLUS_TWO, REALMODELS / "saved_model_half_plus_two_tf2_cpu", deep=True)
    assert (report.old["kind"], report.new["kind"]) == ("tf1", "tf2")
    # Every tensor name differs, and that alone is internal.
    names = [c for c in report.changes if c.field == "name" and c.kind != "init_op_added"]
    assert len(names) == 10 and {c.verdict for c in names} == {I}
    # The TF2 export declares classify/regress signatures as predict, with other shapes: breaking.
    methods = {c.signature: (c.old, c.new) for c in report.changes if c.kind == "method_changed"}
    assert methods["classify_x_to_y"] == ("tensorflow/serving/classify", "tensorflow/serving/predict")
    assert len(methods) == 4
    x_shape = next(c for c in report.changes if c.signature == "serving_default" and c.field == "shape")
    assert (x_shape.old, x_shape.new, x_shape.verdict) == ([-1, 1], [1], B)
    unknown = next(c for c in report.changes if c.signature == "classify_x_to_y" and c.field == "shape")
    assert (unknown.old, unknown.new, unknown.verdict) == (None, [-1], B)
    assert ("signature_added", "classify_x2_to_y3", None, None, C) in rows(report.changes)
    assert ("init_op_added", None, "__saved_model_init_op", "name", I) in rows(report.changes)
    assert not [c for c in report.changes if c.kind.startswith(("input_", "output_")) and c.field is None]
    # Checkpoint keys differ by the TF2 suffix; b is the only unambiguous value match.
    renamed = [(c.name, c.counterpart) for c in report.changes if c.counterpart]
    assert renamed == [("b", "b/.ATTRIBUTES/VARIABLE_VALUE"), ("b/.ATTRIBUTES/VARIABLE_VALUE", "b")]
    assert report.exit_status == 3


def test_deep_compares_files_by_checksum(tmp_path: Path) -> None:
    base = two_versions(tmp_path, HALF_PLUS_TWO)
    (base / "2" / "assets" / "foo.txt").write_text("changed")
    (base / "2" / "assets.extra").mkdir()
    (base / "2" / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"\0")
    assert diff(base).changes == []  # files only with --deep
    report = diff(base, deep=True)
    assert rows(report.changes) == [
        ("file_added", None, "assets.extra/tf_serving_warmup_requests", "sha256", I),
        ("file_changed", None, "assets/foo.txt", "sha256", I),
    ]
    assert report.exit_status == 1


def test_signature_option_narrows(tmp_path: Path) -> None:
    def edit(proto: Any) -> None:
        proto.meta_graphs[0].signature_def.pop("double")
        SD(proto).inputs["a"].dtype = 2
        _add_tag_set(proto)

    base = two_versions(tmp_path, TF2, edit)
    assert rows(diff(base, signature="serving_default").changes) == [
        ("input_changed", "serving_default", "a", "dtype", B)
    ]
    assert rows(diff(base, signature="double").changes) == [("signature_removed", "double", None, None, B)]
    assert len(diff(base).changes) == 3
    with pytest.raises(
        SignatureNotFound, match=r"no signature 'nope' in either side.*old has: double, serving_default"
    ):
        diff(base, signature="nope")


def test_tags_option(tmp_path: Path) -> None:
    base = two_versions(tmp_path, TF2, _add_tag_set)
    assert diff(base, tags=("serve",)).tags == ("serve",)
    with pytest.raises(TagSetNotFound, match=r"no meta graph with tags \[gpu,serve\].*@1"):
        diff(base, tags=("serve", "gpu"))


def test_diff_base_takes_newest_and_the_one_before(tmp_path: Path) -> None:
    base = two_versions(tmp_path, TF2, CASES["output added"][1], new_version=10)
    shutil.copytree(base / "1", base / "2")
    report = diff(base)
    assert (report.old["version"], report.new["version"]) == (2, 10)
    assert report.exit_status == 1
    assert (diff(f"{base}@2").old["version"], diff(f"{base}@2").changes) == (1, [])


# ---- bad input: the same errors as show for either side, and diff's own ----


def test_one_version_base_lists_versions(tmp_path: Path) -> None:
    with pytest.raises(VersionNotFound, match=r"only one version.*versions: 123"):
        diff(HALF_PLUS_TWO)
    base = two_versions(tmp_path, TF2)
    with pytest.raises(VersionNotFound, match=r"no version before 1.*versions: 1, 2"):
        diff(f"{base}@1")
    with pytest.raises(VersionNotFound, match="single version folder"):
        diff(REALMODELS / "tfjs_times_two_int")


def test_no_tag_set_in_common_lists_both(tmp_path: Path) -> None:
    def edit(proto: Any) -> None:
        proto.meta_graphs[0].meta_info_def.ClearField("tags")
        proto.meta_graphs[0].meta_info_def.tags.append("transform")

    base = two_versions(tmp_path, TF2, edit)
    with pytest.raises(TagSetNotFound, match=r"no tag set in common; old: \[serve\]; new: \[transform\]"):
        diff(base)
    assert_one_line_error(run_cli("diff", base), "no tag set in common", "old: [serve]", "new: [transform]")


def test_errors_on_either_side(tmp_path: Path) -> None:
    for sides in ((tmp_path / "nope", HALF_PLUS_TWO), (HALF_PLUS_TWO, tmp_path / "nope")):
        with pytest.raises(PathNotFound):
            diff(*sides)
    bundle = REALMODELS / "not-savedmodels" / "serving_session_bundle"
    with pytest.raises(NotASavedModel, match="SessionBundle"):
        diff(HALF_PLUS_TWO, bundle)
    base = two_versions(tmp_path, HALF_PLUS_TWO)
    (base / "2" / "saved_model.pb").write_bytes(b"\x08garbage")
    with pytest.raises(CorruptModel):
        diff(base)


def test_a_side_that_cannot_be_served_is_refused_as_show_refuses_it(tmp_path: Path) -> None:
    base = two_versions(tmp_path, TF2)
    for shard in (base / "2" / "variables").glob("variables.data-*"):
        shard.unlink()
    with pytest.raises(CorruptModel, match=r"@2: variables/variables\.data-00000-of-00001: is missing"):
        diff(base)
    assert_one_line_error(run_cli("diff", base), "@2", "variables.data-00000-of-00001", "missing")


def test_cli_errors_are_one_line() -> None:
    assert_one_line_error(run_cli("diff", HALF_PLUS_TWO, "/nonexistent/m"), "no such file or folder", "m")
    assert_one_line_error(run_cli("diff", HALF_PLUS_TWO), "only one version", "123")
    assert_one_line_error(
        run_cli("diff", HALF_PLUS_TWO, HALF_PLUS_TWO, "--signature", "predcit"),
        "no signature 'predcit'",
        "regress_x_to_y",
    )
    assert_one_line_error(run_cli("diff", HALF_PLUS_TWO, f"{HALF_PLUS_TWO}@9"), "no version 9", "123")


# ---- the CLI: exit statuses, --json shape, tables ----

CHANGE_KEYS = ["kind", "verdict", "signature", "alias", "name", "field", "old", "new", "note", "counterpart"]


def test_cli_exit_statuses_and_json(tmp_path: Path) -> None:
    same = run_cli("diff", HALF_PLUS_TWO, HALF_PLUS_TWO)
    assert same.code == 0 and "no changes" in same.stdout, same.stderr
    compatible = run_cli("diff", two_versions(tmp_path, TF2, CASES["output added"][1]), "--json")
    assert compatible.code == 1, compatible.stderr
    data = json.loads(compatible.stdout)
    assert list(data) == [
        "schema",
        "old",
        "new",
        "tags",
        "signature",
        "deep",
        "verdict",
        "exit_status",
        "summary",
        "changes",
    ]
    assert (data["schema"], data["verdict"], data["exit_status"]) == (DIFF_SCHEMA, "compatible", 1)
    assert data["summary"] == {B: 0, C: 1, I: 0}
    assert list(data["old"]) == ["path", "base", "version", "kind", "tag_sets"]
    (change,) = data["changes"]
    assert list(change) == CHANGE_KEYS
    assert change["new"] == {
        "dtype": "DT_FLOAT",
        "shape": [-1],
        "name": "StatefulPartitionedCall_1:1",
        "encoding": "name",
        "components": {},
    }
    breaking = run_cli("diff", HALF_PLUS_TWO, REALMODELS / "saved_model_half_plus_three", "--deep")
    assert breaking.code == 3, breaking.stderr
    for words in ("signature 'serving_default'", "input x: shape", "rank 2 -> 0", "variables (--deep)", "exit 3"):
        assert words in breaking.stdout, words


def test_diff_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.cli.app import main\n"
        "try:\n    main(['diff', '--deep', '--json', sys.argv[1], sys.argv[2]])\nexcept SystemExit as e:\n"
        "    assert e.code == 3, e.code\n"
        "assert 'tensorflow.python' not in sys.modules, 'tensorflow runtime imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(HALF_PLUS_TWO), str(REALMODELS / "saved_model_half_plus_two_tf2_cpu")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
