"""`smsurgery check` (TF-free): one case per finding, the real models' verdicts, clean fixtures.

Each case starts from a real model or a committed fixture, copied, and
changes one thing the way a broken export would have it (a proto edit, a
file swapped or written), then asserts the finding's code and that the
severity gives the documented exit status.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from smsurgery.core import protos
from smsurgery.core.model import parse_saved_model, read
from smsurgery.core.oplist import OpList, shipped_versions
from smsurgery.inspect.check import check, model_findings
from smsurgery.inspect.check_graph import graph_version_findings, size_findings
from smsurgery.inspect.findings import CATALOG
from smsurgery.serving.warmup import WARMUP_FILE, tfrecord
from tests.conftest import REALMODELS, REPO, assert_one_line_error, fixture_model_names, real_model_names, run_cli

SCHEMA = json.loads((REPO / "docs" / "schemas" / "check.json").read_text())
HALF = REALMODELS / "saved_model_half_plus_two_cpu"
# Warnings a clean fixture may justly get: tf1_linear's only signature is 'prediction'.
JUSTIFIED = {"tf1_linear": {"SM-SIG-NO-DEFAULT"}}


def codes(report: Any) -> set[str]:
    return {f.code for f in report.findings}


def version_dir(base: Path) -> Path:
    return next(p for p in sorted(base.iterdir()) if (p / "saved_model.pb").is_file())


def edit_pb(base: Path, edit: Callable[[Any], None]) -> Path:
    """Apply `edit` to the SavedModel proto of the base's (only) version, in place."""
    folder = version_dir(base)
    saved_model = parse_saved_model(folder / "saved_model.pb")
    edit(saved_model)
    (folder / "saved_model.pb").write_bytes(saved_model.SerializeToString(deterministic=True))
    return folder


def assert_valid(report: Any) -> dict[str, Any]:
    data = report.to_json()
    jsonschema.validate(data, SCHEMA)
    return data


# ---- real models get the verdict Serving gives; clean fixtures stay clean ----


@pytest.mark.parametrize("name", real_model_names())
def test_real_model_verdicts(name: str) -> None:
    report = check(REALMODELS / name)
    assert_valid(report)
    if name == "tfdf_adult_rf_custom_ops":
        assert "SM-OPS-UNREGISTERED" in codes(report) and report.exit_status == 3
        assert any("SimpleML" in f.subject for f in report.findings)
        assert all("tensorflow_decision_forests" in f.fix for f in report.findings if f.code == "SM-OPS-UNREGISTERED")
    elif name == "tfx_transform_fn":
        assert "SM-TAGS-MISSING" in codes(report) and report.exit_status == 3
    else:  # the rest load: warnings at most
        assert report.exit_status in (0, 1), [f.to_json() for f in report.findings]


@pytest.mark.parametrize("name", fixture_model_names())
def test_fixtures_are_clean(name: str) -> None:
    report = check(REPO / "fixtures" / "models" / name)
    assert codes(report) <= JUSTIFIED.get(name, set()), [f.to_json() for f in report.findings]


def test_cli_exit_status_json_and_markdown() -> None:
    result = run_cli("check", REALMODELS / "tfdf_adult_rf_custom_ops", "--json")
    assert result.code == 3
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["counts"]["error"] == 3 and data["verdict"] == "errors"
    assert run_cli("check", REPO / "fixtures" / "models" / "tf2_module").code == 0
    assert run_cli("check", REPO / "fixtures" / "models" / "tf1_linear").code == 1
    markdown = run_cli("check", REALMODELS / "tfx_transform_fn", "--format", "markdown")
    assert markdown.code == 3
    assert markdown.stdout.startswith("### ") and "| `SM-TAGS-MISSING` |" in markdown.stdout
    assert "smsurgery tags set" in markdown.stdout


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("check", HALF, "--target-tf", "1.15"), "1.15", *shipped_versions())
    assert_one_line_error(run_cli("check", HALF, "--format", "html"), "html", "markdown")
    bad = tmp_path / "batching.txt"
    bad.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: [2, 4\n")
    assert_one_line_error(run_cli("check", HALF, "--batching", bad), "batching.txt:3:1")
    bad.write_text("max_batch_size { value: 8 }\n  batch_timeout: 5\n")
    assert_one_line_error(run_cli("check", HALF, "--batching", bad), "batching.txt:2:3", "batch_timeout")
    assert_one_line_error(run_cli("check", tmp_path / "nothing"), "nothing")


# ---- the model base ----


def test_base_findings(tmp_path: Path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    (base / "v1").mkdir()
    assert codes(check(base)) == {"SM-BASE-NO-VERSIONS"}
    for name in ("1", "01", "-3", str(2**63)):
        shutil.copytree(HALF / "00000123", base / name)
    (base / "7").mkdir()  # the newest folder holds no SavedModel
    report = check(base)
    assert {"SM-BASE-DUPLICATE-VERSION", "SM-BASE-SKIPPED-NAME", "SM-BASE-NEGATIVE-VERSION"} <= codes(report)
    assert "SM-BASE-NOT-A-SAVEDMODEL" in codes(report) and report.version == 7
    assert report.versions["all"] == [-3, 1, 7] and report.versions["folders"]["1"] == "1"
    assert_valid(report)
    assert check(f"{base}@1").version == 1


def test_files_broken(model_copy) -> None:
    base = model_copy(HALF)
    (version_dir(base) / "variables" / "variables.data-00000-of-00001").unlink()
    assert "SM-FILES-BROKEN" in codes(check(base))
    (version_dir(base) / "saved_model.pb").write_bytes(b"\x00garbage")
    assert codes(check(base)) == {"SM-FILES-BROKEN"}


# ---- tags ----


def test_duplicate_tag_sets(model_copy) -> None:
    base = model_copy(HALF)
    edit_pb(base, lambda sm: sm.meta_graphs.add().CopyFrom(sm.meta_graphs[0]))
    report = check(base)
    assert "SM-TAGS-DUPLICATE" in codes(report)
    warnings = run_cli("show", base, "--json")
    assert any("TensorFlow loads the first" in w for w in json.loads(warnings.stdout)["warnings"])


def test_missing_tags_names_the_fix() -> None:
    report = check(REALMODELS / "tfx_transform_fn")
    item = next(f for f in report.findings if f.code == "SM-TAGS-MISSING")
    assert "could not be found" in item.message and "[transform]" in item.message
    assert item.fix.startswith("smsurgery tags set") and "--tags transform" in item.fix
    assert "SM-TAGS-MISSING" not in codes(check(REALMODELS / "tfx_transform_fn", tags=("transform",)))
    shown = run_cli("show", REALMODELS / "tfx_transform_fn")
    assert shown.code == 0 and "Serving refuses to load this version" in shown.stderr
    assert json.loads(run_cli("show", REALMODELS / "tf2onnx_regression", "--json").stdout)["warnings"] == []


# ---- signatures ----


def _signatures(edit: Callable[[Any], None]) -> Callable[[Any], None]:
    return lambda sm: edit(sm.meta_graphs[0].signature_def)


def test_signature_findings(model_copy) -> None:
    base = model_copy(HALF)

    def edit(signatures: Any) -> None:
        signatures["serving_default"].outputs["y"].name = "does_not_exist:0"
        regress = signatures["regress_x_to_y"]
        regress.outputs["extra"].CopyFrom(regress.outputs["outputs"])
        classify = signatures["classify_x_to_y"]
        classify.method_name = "tensorflow/serving/classify"
        classify.outputs["scores"].dtype = protos.dtype_numbers()["DT_DOUBLE"]
        signatures["predict_half"].CopyFrom(signatures["serving_default"])
        signatures["predict_half"].inputs["x"].dtype = protos.dtype_numbers()["DT_HALF"]

    edit_pb(base, _signatures(edit))
    report = check(base)
    found = {(f.code, f.subject) for f in report.findings}
    assert ("SM-SIG-TENSOR-MISSING", "signature 'serving_default' output 'y'") in found
    assert ("SM-SIG-REGRESS", "signature 'regress_x_to_y'") in found
    assert ("SM-SIG-CLASSIFY", "signature 'classify_x_to_y'") in found
    assert ("SM-SIG-REST-DTYPE", "signature 'predict_half' input 'x'") in found
    assert report.exit_status == 3


def test_examples_input_and_no_default() -> None:
    report = check(HALF)
    assert codes(report) == {"SM-SIG-EXAMPLES-INPUT"}  # regress_x2_to_y3 takes floats: Predict only
    assert "SM-SIG-NO-DEFAULT" in codes(check(REALMODELS / "java_saved_model_using_python"))


def test_no_signature_and_unfed_placeholder(model_copy) -> None:
    base = model_copy("tf1_linear")

    def unfed(sm: Any) -> None:
        graph = sm.meta_graphs[0].graph_def
        extra = graph.node.add(name="extra_input", op="Placeholder")
        extra.attr["dtype"].type = protos.dtype_numbers()["DT_FLOAT"]
        add = graph.node.add(name="needs_extra", op="AddV2", input=["extra_input", "extra_input"])
        add.attr["T"].type = protos.dtype_numbers()["DT_FLOAT"]
        signature = sm.meta_graphs[0].signature_def["prediction"]
        signature.outputs["z"].CopyFrom(next(iter(signature.outputs.values())))
        signature.outputs["z"].name = "needs_extra:0"

    edit_pb(base, unfed)
    item = next(f for f in check(base).findings if f.code == "SM-SIG-UNFED-INPUT")
    assert "extra_input" in item.message and item.subject == "signature 'prediction' output 'z'"
    edit_pb(base, lambda sm: sm.meta_graphs[0].signature_def.clear())
    assert "SM-SIG-NONE" in codes(check(base))


# ---- ops and graph versions ----


def test_unregistered_op_and_graph_versions(model_copy) -> None:
    base = model_copy("tf1_linear")

    def edit(sm: Any) -> None:
        sm.meta_graphs[0].graph_def.node.add(name="custom", op="MyCustomOpThatNoOneHas")
        sm.meta_graphs[0].graph_def.versions.min_consumer = 99999

    edit_pb(base, edit)
    report = check(base)
    assert {"SM-OPS-UNREGISTERED", "SM-GRAPH-MIN-CONSUMER"} <= codes(report)
    assert any("MyCustomOpThatNoOneHas" in f.message for f in report.findings)
    edit_pb(base, lambda sm: setattr(sm.meta_graphs[0].graph_def.versions, "min_consumer", 0))
    edit_pb(base, lambda sm: setattr(sm.meta_graphs[0].graph_def.versions, "producer", 99999))
    assert "SM-GRAPH-PRODUCER-NEWER" in codes(check(base))
    old = read(REALMODELS / "tf_half_plus_two_main_op")  # producer 23
    strict = OpList(version="9.9", ops=frozenset(), producer=3000, min_consumer=0, min_producer=30)
    assert [f.code for f in graph_version_findings(old.meta_graph(), strict)] == ["SM-GRAPH-PRODUCER-OLD"]


# ---- batching ----


def test_batching(tmp_path: Path, model_copy) -> None:
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 8 }\nallowed_batch_sizes: [2, 4, 4, 6]\nnum_batch_threads { value: 4 }\n"
    )
    report = check(REALMODELS / "tf_half_plus_two_v2", batching=params)
    messages = [f.message for f in report.findings if f.code == "SM-BATCH-CONFIG"]
    assert any("must increase" in m for m in messages) and any("must match max_batch_size" in m for m in messages)
    params.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: [2, 8]\nbatch_timeout_micros { value: 10 }\n")
    assert codes(check(REPO / "fixtures" / "models" / "keras_mlp", batching=params)) == set()
    assert "SM-BATCH-DIM0" in codes(check(REALMODELS / "tfjs_times_two_int", batching=params))  # a scalar
    assert "SM-BATCH-UNKNOWN-RANK" in codes(check(REALMODELS / "tf2onnx_regression", batching=params))
    base = model_copy("tf1_linear")
    edit_pb(base, lambda sm: setattr(next(iter(sm.meta_graphs[0].signature_def["prediction"].inputs.values()))
                                     .tensor_shape.dim[0], "size", 1))  # fmt: skip
    item = next(f for f in check(base, batching=params).findings if f.code == "SM-BATCH-DIM0")
    assert "fixed at 1" in item.message and "--batch dynamic" in item.fix


# ---- warmup ----


def _log(kind: str, signature: str = "serving_default", inputs: dict[str, Any] | None = None) -> bytes:
    log = protos.message_class("tensorflow_serving/apis/prediction_log.proto", "tensorflow.serving.PredictionLog")()
    if kind == "predict":
        request = log.predict_log.request
        request.model_spec.signature_name = signature
        for alias, (dtype, values) in (inputs or {}).items():
            request.inputs[alias].dtype = protos.dtype_numbers()[dtype]
            request.inputs[alias].tensor_shape.dim.add(size=len(values))
            request.inputs[alias].float_val.extend(values)
    elif kind == "session_run":
        log.session_run_log.request.feed.add()
    return log.SerializeToString()


def _write_warmup(base: Path, records: list[bytes] | bytes) -> None:
    path = version_dir(base) / WARMUP_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(records if isinstance(records, bytes) else tfrecord(records))


def test_warmup_findings(model_copy) -> None:
    base = model_copy(HALF)
    good = _log("predict", inputs={"x": ("DT_FLOAT", [1.0, 2.0])})
    _write_warmup(base, [good])
    assert codes(check(base)) == {"SM-SIG-EXAMPLES-INPUT"}
    _write_warmup(base, [good] * 1001)
    assert "SM-WARMUP-TOO-MANY" in codes(check(base))
    framed = bytearray(tfrecord([good]))
    framed[-1] ^= 0xFF
    _write_warmup(base, bytes(framed))
    item = next(f for f in check(base).findings if f.code == "SM-WARMUP-CORRUPT")
    assert "corrupted record at 0" in item.message
    _write_warmup(base, [_log("session_run")])
    assert "SM-WARMUP-LOG-TYPE" in codes(check(base))
    bad = [
        _log("predict", signature="nope"),
        _log("predict", inputs={"x": ("DT_DOUBLE", [1.0])}),
        _log("predict", inputs={"x": ("DT_FLOAT", [1.0]), "q": ("DT_FLOAT", [1.0])}),
        _log("predict", inputs={}),
    ]
    _write_warmup(base, bad)
    messages = [f.message for f in check(base).findings if f.code == "SM-WARMUP-REQUEST"]
    assert any("'nope'" in m for m in messages)
    assert any("DT_DOUBLE" in m for m in messages)
    assert any("'q' is not an input" in m for m in messages)
    assert any("not in the request" in m for m in messages)


# ---- size, XLA, devices ----


def test_size_findings(model_copy) -> None:
    base = model_copy("tf1_linear")

    def big_const(sm: Any) -> None:
        node = sm.meta_graphs[0].graph_def.node.add(name="huge", op="Const")
        node.attr["value"].tensor.dtype = protos.dtype_numbers()["DT_FLOAT"]
        node.attr["value"].tensor.tensor_content = b"\0" * (16 * 2**20)

    edit_pb(base, big_const)
    item = next(f for f in check(base).findings if f.code == "SM-SIZE-LARGE-CONST")
    assert item.subject == "node huge"
    model = read(base, full=True)  # parsed now: the file is then grown sparse, which a lazy read would parse
    with open(model.ref.saved_model_file, "r+b") as handle:  # a sparse file: the size, not the bytes
        handle.truncate(2**30 + 1)
    assert [f.code for f in size_findings(model, model.meta_graph())] == ["SM-SIZE-OVER-1GB", "SM-SIZE-LARGE-CONST"]
    with open(model.ref.saved_model_file, "r+b") as handle:
        handle.truncate(2**31 + 1)
    assert size_findings(model, model.meta_graph())[0].code == "SM-SIZE-OVER-2GB"


def test_xla_and_gpu_pins(model_copy) -> None:
    base = model_copy("tf2_module")
    edit_pb(base, lambda sm: sm.meta_graphs[0].graph_def.library.function[0].attr["_XlaMustCompile"]
            .__setattr__("b", True))  # fmt: skip
    assert "SM-XLA-JIT" in codes(check(base))
    item = next(f for f in check(REALMODELS / "saved_model_half_plus_two_gpu").findings if f.code == "SM-DEVICE-GPU")
    assert "GPU" in item.subject and item.fix.startswith("smsurgery devices strip")


# ---- fingerprint, checkpoint ----


def test_fingerprint_findings(model_copy) -> None:
    base = model_copy("tf2_module")
    shutil.copy(version_dir(REPO / "fixtures" / "models" / "keras_mlp") / "fingerprint.pb", version_dir(base))
    item = next(f for f in check(base).findings if f.code == "SM-FINGERPRINT-STALE")
    assert "checkpoint_hash" in item.message
    (version_dir(base) / "fingerprint.pb").unlink()
    assert "SM-FINGERPRINT-MISSING" in codes(check(base))
    (version_dir(base) / "fingerprint.pb").write_bytes(b"")
    assert "SM-FINGERPRINT-STALE" in codes(check(base))
    old = model_copy(REALMODELS / "saved_model_half_plus_two_tf2_cpu")  # fingerprint producer 1
    assert "SM-FINGERPRINT-STALE" not in codes(check(old))
    edit_pb(old, lambda sm: sm.meta_graphs[0].signature_def["serving_default"].outputs["y"].__setattr__("name", "y:0"))
    item = next(f for f in check(old).findings if f.code == "SM-FINGERPRINT-STALE")
    assert "saved_model_checksum" in item.message


def test_checkpoint_from_another_model(model_copy) -> None:
    small = model_copy(REALMODELS / "tf_half_plus_two_v2")  # restores a, b, c
    shutil.rmtree(version_dir(small) / "variables")
    shutil.copytree(HALF / "00000123" / "variables", version_dir(small) / "variables")  # a, a2, b, c, c2
    item = next(f for f in check(small).findings if f.code == "SM-CKPT-EXTRA")
    assert "a2" in item.message and "c2" in item.message and check(small).exit_status == 1
    shown = json.loads(run_cli("show", small, "--json").stdout)["warnings"]
    assert any("do not have: a2, c2" in w for w in shown)
    big = model_copy(HALF, "big")
    shutil.rmtree(big / "00000123" / "variables")
    shutil.copytree(version_dir(REALMODELS / "tf_half_plus_two_v2") / "variables", big / "00000123" / "variables")
    assert "SM-CKPT-MISSING" in codes(check(big))


# ---- scan's risky ops ----


def test_risky_op_in_a_signature(model_copy) -> None:
    base = model_copy("tf1_linear")

    def reader(sm: Any) -> None:
        graph = sm.meta_graphs[0].graph_def
        name = graph.node.add(name="filename", op="Const")
        name.attr["dtype"].type = protos.dtype_numbers()["DT_STRING"]
        name.attr["value"].tensor.dtype = protos.dtype_numbers()["DT_STRING"]
        name.attr["value"].tensor.string_val.append(b"/etc/passwd")
        graph.node.add(name="read", op="ReadFile", input=["filename"])
        signature = sm.meta_graphs[0].signature_def["prediction"]
        signature.outputs["leak"].name = "read:0"
        signature.outputs["leak"].dtype = protos.dtype_numbers()["DT_STRING"]

    edit_pb(base, reader)
    item = next(f for f in check(base).findings if f.code == "SM-SCAN-RISKY-OP")
    assert item.subject == "signature 'prediction' op ReadFile" and item.severity == "warning"


def test_every_code_is_documented() -> None:
    page = (REPO / "docs" / "check.md").read_text()
    missing = [code for code in CATALOG if f"`{code}`" not in page]
    assert not missing


def test_check_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.cli.app import main\n"
        "try:\n    main(['check', '--json', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow.python' not in sys.modules, 'tensorflow runtime imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REALMODELS / "saved_model_half_plus_two_tf2_cpu")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_warmup_constants_agree() -> None:
    from smsurgery.inspect import check_warmup
    from smsurgery.serving import warmup

    assert (check_warmup.WARMUP_FILE, check_warmup.MAX_WARMUP_RECORDS) == (
        warmup.WARMUP_FILE,
        warmup.MAX_WARMUP_RECORDS,
    )


def test_library_call_gives_the_cli_findings() -> None:
    from smsurgery.core import oplist

    found = model_findings(read(HALF), ("serve",), oplist.load())
    assert [f.code for f in found] == ["SM-SIG-EXAMPLES-INPUT"]
