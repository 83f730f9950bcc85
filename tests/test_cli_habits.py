"""Habits of the command line: --version, --help without heavy imports, whole tables when piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURE_MODELS, REALMODELS, REPO, run_cli


def _imported_modules(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "smsurgery", *args], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_version_names_tool_tensorflow_and_protobuf_without_importing_them() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert (
        result.stdout.startswith("smsurgery 0.") and "tensorflow 2." in result.stdout and "protobuf " in result.stdout
    )
    modules = _imported_modules("--version")
    assert "tensorflow" not in modules and "numpy" not in modules


def test_help_lists_every_command_without_numpy_or_tensorflow() -> None:
    modules = _imported_modules("--help")
    assert "numpy" not in modules and "tensorflow" not in modules
    result = run_cli("--help")
    commands = result.stdout.split("Commands:")[1]
    assert "..." not in commands  # the command list is not cut short
    for command in ("show", "diff", "scan", "request", "signature", "image-input", "convert", "warmup"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize("model", ["keras_image", "tfx_trainer_estimator", "saved_model_half_plus_two_tf2_cpu"])
def test_piped_tables_keep_whole_tensor_names(model: str) -> None:
    path = FIXTURE_MODELS / model if (FIXTURE_MODELS / model).is_dir() else REALMODELS / model
    if not path.is_dir():
        pytest.skip(f"{model} is not here")
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    proc = subprocess.run(
        [sys.executable, "-m", "smsurgery", "show", str(path)], capture_output=True, text=True, cwd=REPO, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    shown = run_cli("show", path, "--json")
    for signature in json.loads(shown.stdout)["signatures"].values():
        for tensor in [*signature["inputs"].values(), *signature["outputs"].values()]:
            if tensor["name"]:
                assert tensor["name"] in proc.stdout


def test_names_print_literally_never_as_emoji(capsys: pytest.CaptureFixture[str]) -> None:
    from smsurgery.cli.common import _console

    _console(stderr=False).print("output 'scores:smile:' of ':cross_mark:'")
    assert capsys.readouterr().out.strip() == "output 'scores:smile:' of ':cross_mark:'"


def test_proto_only_repair_imports_neither_tensorflow_nor_numpy_nor_rich_widgets(tmp_path) -> None:
    import shutil

    shutil.copytree(FIXTURE_MODELS / "tf1_linear", tmp_path / "m")
    modules = _imported_modules("tags", "set", str(tmp_path / "m"), "training", "--no-verify")
    assert not modules & {"tensorflow", "numpy", "rich.progress", "rich.table", "rich._emoji_codes"}
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
