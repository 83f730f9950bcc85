"""The MkDocs site builds with --strict: no broken links, no missing pages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    command = [str(mkdocs)] if mkdocs.is_file() else [shutil.which("mkdocs") or "mkdocs"]
    if not Path(command[0]).is_file() and shutil.which(command[0]) is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
