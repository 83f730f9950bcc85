"""The README's quick start: two lines, and the first one runs as written.

CI runs the second line; this test runs the first (minus its `pip install`)
against a temporary output folder, as a new user would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _quick_start() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_lines() -> None:
    lines = _quick_start()
    assert len(lines) == 2
    assert lines[0].startswith("pip install -e . && smsurgery ")
    assert lines[1] == "pip install -e '.[test]' && pytest"


def test_quick_start_main_job_runs(tmp_path: Path) -> None:
    command = _quick_start()[0].removeprefix("pip install -e . && ")
    command = command.replace("/tmp/smsurgery-demo", str(tmp_path / "demo"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "published" in proc.stdout and "verified" in proc.stdout
    response = json.loads(proc.stdout[proc.stdout.index("{") :])
    (scores,) = response["predictions"]
    assert len(scores) == 3 and abs(sum(scores) - 1.0) < 1e-5  # softmax over 3 classes
    assert (tmp_path / "demo" / "1" / "saved_model.pb").is_file()


def test_without_the_real_models_their_tests_skip_and_say_why() -> None:
    """A clone without ../shared/realmodels: the tests that read them skip, the others still run and pass."""
    env = {**os.environ, "SMSURGERY_REALMODELS": str(REPO / "no-such-folder")}
    modules = ["tests/test_diff.py", "tests/test_check_markdown.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-rs", "-p", "no:cacheprovider", *modules],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "needs the real models in" in proc.stdout
    assert re.search(r"\b[1-9]\d* passed", proc.stdout), proc.stdout[-500:]
