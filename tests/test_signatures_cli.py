"""`smsurgery signature|alias|output|compare` as real processes: output, exit codes, bad input.

Every bad-input case: exit status 2, one line on stderr naming the problem,
no new version and no leftover staging folder (the model base is
byte-identical before and after). These fail before TensorFlow is imported,
so they are cheap; the happy paths that verify (and so import TensorFlow)
are few.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smsurgery import read
from smsurgery.graph.session import load_session, load_tf2, run_tf2
from tests.conftest import (
    REALMODELS,
    REPO,
    CliResult,
    assert_one_line_error,
    require_unprivileged_python,
    run_cli,
    run_unprivileged,
    tree_digest,
)


def _writable(path: Path) -> Path:
    for folder, _dirs, files in os.walk(path):
        for entry in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chmod(entry, os.stat(entry).st_mode | stat.S_IWUSR)
    return path


def test_signature_rename_real_tf2_export_json(model_copy) -> None:
    base = _writable(model_copy(REALMODELS / "saved_model_half_plus_two_tf2_cpu"))
    result = run_cli("signature", "rename", base, "serving_default", "predict", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "smsurgery.edit/1" and report["version"] == 124
    assert report["changes"][0]["kind"] == "rename_signature" and report["changes"][0]["new"] == "predict"
    assert report["verification"]["ok"] is True
    assert report["carried"]["linked"] == ["variables/variables.data-00000-of-00001"]
    new = Path(report["path"])
    loaded = load_tf2(new)
    assert sorted(loaded.signatures) == read(new).meta_graph().signature_keys()
    x = np.array([4.0], np.float32)
    with load_session(new, ["serve"]) as session:
        assert session.run("predict", {"x": x})["y"].tolist() == [4.0]
    assert run_tf2(loaded, "predict", {"x": x})["y"].tolist() == [4.0]


def test_apply_several_edits_in_one_version(model_copy, tmp_path) -> None:
    base = model_copy("tf2_module")
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps([
        {"op": "rename_alias", "signature": "serving_default", "old": "output", "new": "z_out"},
        {"op": "rename_alias", "signature": "serving_default", "old": "a", "new": "zz"},
        {"op": "rename_signature", "old": "double", "new": "times_six"},
    ]))  # fmt: skip
    result = run_cli("signature", "apply", base, edits)
    assert result.code == 0, result.stderr
    assert f"published {base / '2'}" in result.stdout
    assert "output 'output' of 'serving_default' -> 'z_out'" in result.stdout
    assert "signature 'double' -> 'times_six'" in result.stdout
    assert "verified against the source" in result.stderr and "tf.saved_model.load agrees" in result.stderr
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_set_default_without_verification_and_compare(model_copy) -> None:
    base = model_copy("tf1_linear")
    result = run_cli("signature", "set-default", base, "prediction", "--no-verify")
    assert result.code == 0, result.stderr
    assert "not verified" in result.stderr
    assert read(base).meta_graph().signature_keys() == ["serving_default"]
    same = run_cli("compare", f"{base}@1", f"{base}@2", "--signature", "prediction")
    assert_one_line_error(same, "no signature 'prediction'", "@2")
    repointed = run_cli("alias", "repoint", base, "y", "MatMul:0", "--no-verify")
    assert repointed.code == 0, repointed.stderr
    differs = run_cli("compare", f"{base}@2", f"{base}@3", "--json")
    assert differs.code == 3, differs.stderr
    report = json.loads(differs.stdout)
    y = report["signatures"][0]["outputs"][0]
    assert report["ok"] is False and y["status"] == "differs" and y["max_abs_diff"] > 0.01
    loose = run_cli("compare", f"{base}@2", f"{base}@3", "--atol", "100")
    assert loose.code == 0, loose.stderr
    assert "within" in loose.stdout


# --------------------------------------------------------------------------- bad input


BAD_INPUT = [
    ("rename onto existing key", "tf2_module", ["signature", "rename", "{base}", "double", "serving_default"],
     ["already exists", "serving_default"]),
    ("unknown signature", "tf2_module", ["signature", "rename", "{base}", "duoble", "x"],
     ["no signature 'duoble'", "double, serving_default"]),
    ("unknown alias", "tf2_module", ["alias", "rename", "{base}", "outptu", "y"],
     ["no input or output 'outptu'", "output, score"]),
    ("unknown tensor", "tf1_image", ["output", "add", "{base}", "embedding", "Maen:0"],
     ["no tensor 'Maen:0'", "Mean:0"]),
    ("tensor index out of range", "tf1_image", ["output", "add", "{base}", "embedding", "Mean:2"],
     ["has 1 output", "Mean:0"]),
    ("invalid signature key", "tf2_module", ["signature", "rename", "{base}", "double", "two words"],
     ["whitespace"]),
    ("empty key", "tf2_module", ["signature", "rename", "{base}", "double", ""], ["must not be empty"]),
    ("reserved key", "tf2_module", ["signature", "rename", "{base}", "double", "__saved_model_init_op"],
     ["reserved"]),
    ("input alias not a keyword argument", "tf2_module", ["alias", "rename", "{base}", "a", "class"],
     ["'class'", "keyword argument"]),
    ("remove the last signature", "tf1_linear", ["signature", "remove", "{base}", "prediction"],
     ["last signature"]),
    ("remove the last output", "tf1_linear", ["output", "remove", "{base}", "y", "-s", "prediction"],
     ["last output"]),
    ("dtype mismatch on repoint", "tf1_image", ["alias", "repoint", "{base}", "logits", "ExpandDims/dim:0"],
     ["DT_INT32", "DT_FLOAT"]),
    ("target version exists", "tf1_linear", ["signature", "rename", "{base}", "prediction", "p", "--version", "1"],
     ["version 1 already exists"]),
    ("TF2 edit that needs the object graph dropped", "tf2_module",
     ["output", "add", "{base}", "echo", "serving_default_a:0"], ["--drop-object-graph"]),
    ("output needs an input the signature lacks", "tf1_image",
     ["signature", "add", "{base}", "t", "-i", "image=image:0", "-o", "probs=probs:0"],
     ["placeholder(s) temperature", "not among its inputs"]),
    ("unknown signature for an alias", "tf1_image", ["output", "add", "{base}", "e", "Mean:0", "-s", "x"],
     ["no signature 'x'", "serving_default"]),
    ("not ALIAS=TENSOR", "tf1_image", ["signature", "add", "{base}", "new", "--output", "logits="],
     ["ALIAS=TENSOR"]),
    ("one alias twice", "tf1_image", ["signature", "add", "{base}", "new", "-o", "p=probs:0,p=logits:0"],
     ["share an alias", "'p'"]),
    ("set-default over an existing default", "tf2_module", ["signature", "set-default", "{base}", "double"],
     ["--previous"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "model", "args", "words"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_exit_2_and_nothing_written(model_copy, case, model, args, words) -> None:
    base = model_copy(model)
    before = tree_digest(base)
    result = run_cli(*[a.replace("{base}", str(base)) for a in args])
    assert_one_line_error(result, *words)
    assert tree_digest(base) == before, case
    assert sorted(os.listdir(base)) == ["1"], case


def test_bad_edits_file(model_copy, tmp_path) -> None:
    base = model_copy("tf2_module")
    bad = tmp_path / "edits.json"
    bad.write_text('[{"op": "rename_everything"}]')
    assert_one_line_error(run_cli("signature", "apply", base, bad), "unknown edit", "rename_signature")
    bad.write_text("[{")
    assert_one_line_error(run_cli("signature", "apply", base, bad), "not JSON")
    assert sorted(os.listdir(base)) == ["1"]


def test_read_only_model_base(model_copy, world_readable_dir: Path) -> None:
    """A base the user cannot write into: refused before anything is staged.

    Root writes anywhere, so as root the command runs as user `nobody`.
    """
    base = world_readable_dir / "tf1_linear"
    shutil.copytree(model_copy("tf1_linear"), base)
    for folder, _dirs, files in os.walk(base):
        os.chmod(folder, 0o555)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
    before = tree_digest(base)
    require_unprivileged_python()
    proc = run_unprivileged(["-m", "smsurgery", "signature", "rename", str(base), "prediction", "p"])
    assert_one_line_error(CliResult(proc.returncode, proc.stdout, proc.stderr), "cannot write", "permission")
    assert tree_digest(base) == before and sorted(os.listdir(base)) == ["1"]


def test_no_verify_never_imports_tensorflow(model_copy) -> None:
    base = model_copy("tf2_module")
    code = (
        "import sys\nfrom smsurgery.cli.app import main\n"
        f"try:\n    main(['signature', 'rename', {str(base)!r}, 'double', 'twice', '--no-verify'])\n"
        "except SystemExit:\n    pass\nprint('TF', 'tensorflow' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "TF False" in proc.stdout, proc.stdout + proc.stderr
    assert read(base).meta_graph().signature_keys() == ["serving_default", "twice"]


def test_bare_version_folder_needs_out(model_copy, tmp_path) -> None:
    folder = _writable(model_copy(REALMODELS / "tfjs_times_two_int"))
    before = tree_digest(folder)
    assert_one_line_error(run_cli("signature", "rename", folder, "serving_default", "p"), "--out")
    assert tree_digest(folder) == before
    result = run_cli("signature", "rename", folder, "serving_default", "p", "--out", tmp_path / "base", "--no-verify")
    assert result.code == 0, result.stderr
    assert read(tmp_path / "base").ref.version == 1
