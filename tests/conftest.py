"""Shared test helpers: where fixtures and real models are, and how to run the CLI.

Tests never write next to a committed fixture or a real model: `model_copy`
copies one into a temporary folder first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
FIXTURE_MODELS = FIXTURES / "models"
REALMODELS = Path(os.environ.get("SMSURGERY_REALMODELS", REPO.parent / "shared" / "realmodels"))

# Real models that at least one TensorFlow loader can load (see realmodels/README.md).
REAL_NOT_LOADABLE = {"tfdf_adult_rf_custom_ops"}
REAL_NOT_TF2_LOADABLE = {"saved_model_half_plus_three", "saved_model_counter", "rust_keras2_single_input"}


def real_model_names() -> list[str]:
    if not REALMODELS.is_dir():
        return []
    return sorted(p.name for p in REALMODELS.iterdir() if p.is_dir() and p.name != "not-savedmodels")


def fixture_model_names() -> list[str]:
    if not FIXTURE_MODELS.is_dir():
        return []
    return sorted(p.name for p in FIXTURE_MODELS.iterdir() if p.is_dir())


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
    """Run `python -m smsurgery ARGS` as a real process, as a user would."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "smsurgery", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(result: CliResult, *words: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _tf_log_line(line)]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])


def _tf_log_line(line: str) -> bool:
    # TensorFlow's C++ logging and absl may print on stderr before we do.
    return (line[:1] in "IWE" and line[1:5].isdigit()) or line.startswith("WARNING: All log messages")


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path: 'byte-identical' made checkable."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def model_copy(tmp_path: Path):
    """Copy a fixture model (by name) or any folder into tmp_path; return the copy."""

    def copy(source: str | Path, name: str | None = None) -> Path:
        source_path = Path(source)
        if not source_path.is_absolute() and not source_path.exists():
            source_path = FIXTURE_MODELS / str(source)
        target = tmp_path / (name or source_path.name)
        shutil.copytree(source_path, target, symlinks=True)
        return target

    return copy


# --- running as an unprivileged user (root ignores permissions) ---------------------------------

NOBODY = 65534


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A folder that user `nobody` can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="smsurgery-perm-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def run_unprivileged(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run Python as user nobody; `setpriv` lets the interpreter under /root still be executed."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): cannot drop privileges")
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": "/tmp", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*prefix, sys.executable, *args], capture_output=True, text=True, cwd="/", env=env, timeout=120
    )


def _closed_folder(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users cannot enter (mode without o+x)."""
    for folder in [*reversed(path.parents), path]:
        try:
            info = folder.stat()
        except OSError:
            return folder
        if info.st_uid != NOBODY and not info.st_mode & stat.S_IXOTH:
            return folder
    return None


def require_unprivileged_python() -> None:
    """Skip, with a one-line reason, when user nobody cannot reach this checkout (a root-only parent folder)."""
    probe = run_unprivileged(["-c", "import smsurgery.cli.app"])
    if probe.returncode == 0:
        return
    closed = _closed_folder(REPO) or _closed_folder(Path(sys.executable).parent)
    if closed is not None:
        mode = stat.filemode(closed.stat().st_mode) if closed.exists() else "missing"
        pytest.skip(f"user nobody cannot reach this checkout: {closed} is closed to other users ({mode})")
    last = (probe.stderr.strip().splitlines() or ["no error output"])[-1]
    pytest.skip(f"user nobody cannot run this checkout's Python: {last[:200]}")
