"""`--format markdown` for check and diff: a pull request comment, from the same data as --json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from smsurgery.inspect.markdown import cell, check_markdown, diff_markdown
from tests.conftest import REALMODELS, assert_one_line_error, run_cli

HALF = REALMODELS / "saved_model_half_plus_two_cpu"


def _renamed_base(tmp_path: Path) -> Path:
    base = tmp_path / "m"
    base.mkdir()
    shutil.copytree(HALF / "00000123", base / "1")
    result = run_cli("signature", "rename", base, "serving_default", "predict", "--no-verify")
    assert result.code == 0, result.stderr
    return base


def test_diff_markdown_table(tmp_path: Path) -> None:
    base = _renamed_base(tmp_path)
    result = run_cli("diff", base, "--format", "markdown")
    assert result.code == 3  # the exit status is diff's, whatever the format
    lines = result.stdout.splitlines()
    assert lines[0] == "### ❌ smsurgery diff — breaking"
    assert (
        "| ❌ breaking | signature 'serving_default' removed | tensorflow/serving/predict(x) |  | renamed (likely) |"
        in lines
    )
    assert "| ❌ breaking | signature 'predict' added |  | tensorflow/serving/predict(x) | renamed (likely) |" in lines
    as_json = json.loads(run_cli("diff", base, "--json").stdout)
    assert diff_markdown(as_json) == result.stdout  # rendered from diff's unchanged JSON
    assert_one_line_error(run_cli("diff", base, "--format", "yaml"), "yaml", "markdown")


def test_diff_markdown_without_changes(tmp_path: Path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    shutil.copytree(HALF / "00000123", base / "1")
    shutil.copytree(HALF / "00000123", base / "2")
    result = run_cli("diff", base, "--format", "markdown")
    assert result.code == 0 and result.stdout.rstrip().endswith("No changes.")


def test_check_markdown_escapes_cells() -> None:
    assert cell("a|b\nc") == "a\\|b c"
    data = json.loads(run_cli("check", REALMODELS / "tfx_transform_fn", "--json").stdout)
    data["findings"][0]["message"] = "pipes | inside"
    text = check_markdown(data)
    assert "pipes \\| inside" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") - line.count("\\|") == 4 for line in rows[2:])  # five cells each
