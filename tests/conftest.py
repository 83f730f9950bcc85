"""Shared test helpers: where fixtures and real models are, and how to run the CLI.

Tests never write next to a committed fixture or a real model: `model_copy`
copies one into a temporary folder first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
FIXTURE_MODELS = FIXTURES / "models"
REALMODELS = Path(os.environ.get("SMSURGERY_REALMODELS", REPO.parent / "shared" / "realmodels"))

# The processes the tests start (the CLI, doc examples, the crash harness) share one bytecode cache
# outside the tree, as an installed package would have: under PYTHONDONTWRITEBYTECODE=1, which some
# CI images set, each of several hundred processes compiled smsurgery's ~150 modules again.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
_CACHE_NAME = "smsurgery-pycache-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / _CACHE_NAME))

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
    """Run `python -m smsurgery ARGS` as a real process, as a user would.

    Every `--json` output that carries a `schema` field is validated against
    its schema file in docs/schemas, so no test can see a JSON shape the docs
    do not describe.
    """
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "smsurgery", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )
    if "--json" in map(str, args):
        validate_json_output(proc.stdout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


SCHEMAS = REPO / "docs" / "schemas"


def schema_file(schema: str) -> Path:
    """`smsurgery.show/1` -> docs/schemas/show.json."""
    name = schema.split("/")[0].removeprefix("smsurgery.")
    return SCHEMAS / f"{name}.json"


def validate_json_output(stdout: str) -> None:
    """Validate a command's JSON against docs/schemas/<name>.json, if it is a schema'd JSON object."""
    import jsonschema

    try:
        data = json.loads(stdout)
    except ValueError:
        return
    if not isinstance(data, dict) or "schema" not in data:
        return
    path = schema_file(data["schema"])
    assert path.is_file(), f"{data['schema']} has no schema file {path.relative_to(REPO)}"
    jsonschema.validate(data, json.loads(path.read_text()))


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


# --- the fast subset: `pytest -m "not slow"` never starts TensorFlow ----------------------------

# Modules whose tests start TensorFlow (a loader, a session, a Keras build) or run for a minute.
# New tests mark themselves with @pytest.mark.slow; these are the ones that predate the marker.
SLOW_MODULES = {
    "test_concurrent_commands", "test_convert", "test_convert_errors", "test_convert_formats",
    "test_crash_safety", "test_fixtures_rebuild", "test_fuzz_reader", "test_image_input",
    "test_image_input_errors", "test_image_input_formats", "test_image_input_graph", "test_readme",
    "test_run", "test_signatures", "test_signatures_cli", "test_warmup", "test_request_serving",
    "test_concurrent_publish",
}  # fmt: skip
SLOW_TESTS = {
    "test_show_json_matches_tensorflow_on_every_model",
    "test_read_commands_never_run_the_graph_but_the_loader_does",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = not REALMODELS.is_dir()
    reason = f"needs the real models in {REALMODELS} (../shared/realmodels beside the clone, or SMSURGERY_REALMODELS)"
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if missing and _reads_realmodels(item):
            item.add_marker(pytest.mark.skip(reason=reason))


# --- without the real models, the tests that read them skip (and say why) instead of failing ----------


def _under_realmodels(value: object) -> bool:
    """REALMODELS, a path inside it, or a list, tuple or dict (its values) that holds one."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return any(_under_realmodels(v) for v in value)
    if isinstance(value, (str, Path)):
        return str(value) == str(REALMODELS) or str(value).startswith(str(REALMODELS) + os.sep)
    return False


def _names(code: Any) -> set[str]:
    """The global names a function's code (and the code nested in it) refers to."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _names(constant)
    return names


@functools.cache  # once per test module, not once per test
def _realmodel_names(module: Any) -> frozenset[str]:
    """A module's names that lead to the real models: paths under them, and functions that use such names."""
    found = {name for name, value in vars(module).items() if _under_realmodels(value)} | {"real_model_names"}
    functions = {}
    for name, value in vars(module).items():
        code = getattr(getattr(value, "__wrapped__", value), "__code__", None)  # a fixture wraps its function
        if code is not None:
            functions[name] = _names(code)
    while True:
        more = {name for name, used in functions.items() if name not in found and used & found}
        if not more:
            return frozenset(found)
        found |= more


def _reads_realmodels(item: pytest.Item) -> bool:
    function, module = getattr(item, "function", None), getattr(item, "module", None)
    if function is None or module is None:
        return False
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(_under_realmodels(v) for v in callspec.params.values()):
        return True
    used = _names(function.__code__) | set(item.fixturenames)
    return bool(used & _realmodel_names(module))


from tests.remote_servers import gcs_store, s3_store, store  # noqa: F401, E402  (remote object-store servers)
