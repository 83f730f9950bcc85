"""Every fenced example in README.md and docs/ runs, so none can rot.

Each page's ```bash and ```python blocks run in order, in a fresh folder that
holds a copy of the repository's `fixtures/`, with `smsurgery` on PATH. A
shell line must exit 0 unless it ends with `# exit N`; a Python block must
run without an exception. ```text and ```json blocks show output and are not
run. The README's first block (the two set-up lines) is run by
tests/test_readme.py instead: its second line is this test suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO

FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
EXPECTED_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass(frozen=True)
class Example:
    language: str
    code: str
    line: int  # where the block starts in its page, for the failure message


def pages() -> list[Path]:
    docs = sorted((REPO / "docs").rglob("*.md")) if (REPO / "docs").is_dir() else []
    return [REPO / "README.md", *docs]


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = [
        Example(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
        if m.group(1) in ("bash", "python")
    ]
    return found[1:] if page.name == "README.md" and page.parent == REPO else found


def shell_commands(code: str) -> list[str]:
    """Lines of a bash block, with `\\` continuations joined and comment lines dropped."""
    commands, pending = [], ""
    for raw in code.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line)
    return commands


def _environment() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "COLUMNS": "200",
    }


def _run(example: Example, page: Path, workdir: Path) -> None:
    where = f"{page.relative_to(REPO)}:{example.line}"
    if example.language == "python":
        proc = subprocess.run(
            [sys.executable, "-c", example.code], cwd=workdir, capture_output=True, text=True,
            env=_environment(), timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, f"{where}: python block failed\n{proc.stderr[-3000:]}"
        return
    for command in shell_commands(example.code):
        expected = EXPECTED_EXIT.search(command)
        want = int(expected.group(1)) if expected else 0
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], cwd=workdir, capture_output=True, text=True,
            env=_environment(), timeout=900,
        )  # fmt: skip
        assert proc.returncode == want, (
            f"{where}: `{command}` exited {proc.returncode}, expected {want}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    found = examples(page)
    if not found:
        pytest.skip(f"{page.name} has no runnable examples")
    shutil.copytree(FIXTURES, tmp_path / "fixtures", symlinks=True)
    for example in found:
        _run(example, page, tmp_path)


def test_shell_lines_are_parsed_like_a_shell_would() -> None:
    code = "# a comment\nsmsurgery show \\\n  fixtures/models/tf1_linear\n\nsmsurgery diff a b  # exit 3\n"
    assert shell_commands(code) == ["smsurgery show    fixtures/models/tf1_linear", "smsurgery diff a b  # exit 3"]
