"""The read and edit commands give the same results on local disk, S3 (moto) and GCS (fake-gcs-server).

One fixture model base (tf2_module's version 1, and as version 2 the
same with a signature renamed) is put on each backend. Every read command
(`show`, `diff`, `request`, `scan`, `check`, `tensors`) must print the
same JSON there as on a local copy, once the locations are replaced by
`BASE`; every edit (`--no-verify`: no TensorFlow) run with `--out` into a
fresh base of the same backend must publish a version that, downloaded,
has the same files as the local edit's, byte for byte except
`saved_model.pb`, which must parse equal. Through the CLI, as users run it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smsurgery.core import protos
from tests.conftest import FIXTURE_MODELS, run_cli

MODEL = FIXTURE_MODELS / "tf2_module"
# Fields that name where a model is (its path, base, source) or how bytes moved: they differ by backend.
LOCATIONS = ("path", "base", "source", "transfer")

READS = {
    "show": ["show", "{base}", "--json"],
    "diff": ["diff", "{base}@1", "{base}@2", "--json"],
    "request": ["request", "{base}@1", "--batch", "2"],
    "scan": ["scan", "{base}", "--json"],
    "check": ["check", "{base}", "--json"],
    "tensors": ["tensors", "{base}@1", "--json"],
}
EDITS = {
    "signature rename": ["signature", "rename", "{base}@1", "serving_default", "predict"],
    "alias rename": ["alias", "rename", "{base}@1", "a", "first"],
    "output remove": ["output", "remove", "{base}@1", "score"],
    "tags add": ["tags", "add", "{base}@1", "gpu"],
    "devices strip": ["devices", "strip", "{base}@1"],
    "shape set": ["shape", "set", "{base}@1", "a", "8,3"],
    "prune": ["prune", "{base}@1"],
}


@dataclass
class Backend:
    """Where bases live for one run: a local folder, or a bucket of one emulator."""

    name: str
    root: Path  # local bases, and downloads of remote versions
    store: Any = None  # tests.remote_servers.Store, for s3 and gs

    @property
    def env(self) -> dict[str, str] | None:
        return self.store.env if self.store is not None else None

    def new_base(self, name: str = "m") -> str:
        if self.store is not None:
            return self.store.prefix(name)
        return str(self.root / uuid.uuid4().hex[:8] / name)

    def put(self, local: Path) -> str:
        """A copy of the local model base `local` on this backend."""
        base = self.new_base()
        if self.store is not None:
            return self.store.upload(local, base)
        shutil.copytree(local, base)
        return base

    def version(self, base: str, number: int) -> Path:
        """Version `number` of `base` as local files (downloaded from a bucket)."""
        if self.store is None:
            return Path(base) / str(number)
        return self.store.download(f"{base}/{number}", self.root / uuid.uuid4().hex[:8])


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tf2_module's version 1, and as version 2 the same with `serving_default` renamed (made locally)."""
    base = tmp_path_factory.mktemp("matrix") / "m"
    shutil.copytree(MODEL / "1", base / "1")
    made = run_cli("signature", "rename", base, "serving_default", "renamed", "--no-verify")
    assert made.code == 0, made.stderr
    return base


@pytest.fixture(params=["local", "s3", "gs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return Backend("local", tmp_path)
    store = request.getfixturevalue("s3_store" if request.param == "s3" else "gcs_store")
    return Backend(request.param, tmp_path, store)


def _args(template: list[str], **values: str) -> list[str]:
    return [part.format(**values) for part in template]


def _normalized(stdout: str, *locations: str) -> Any:
    """The command's JSON with every location replaced by BASE (longest first) and location fields dropped."""
    text = stdout
    for location in sorted(locations, key=len, reverse=True):
        text = text.replace(json.dumps(location)[1:-1], "BASE").replace(location, "BASE")
    data = json.loads(text)
    return {k: v for k, v in data.items() if k not in LOCATIONS} if isinstance(data, dict) else data


_REFERENCE: dict[str, Any] = {}


def _reference(key: str, compute: Any) -> Any:
    """What the command gives on local disk (computed once per session and worker)."""
    if key not in _REFERENCE:
        _REFERENCE[key] = compute()
    return _REFERENCE[key]


def _read(template: list[str], base: str, env: dict[str, str] | None) -> tuple[int, Any]:
    result = run_cli(*_args(template, base=base), env=env)
    assert result.code in (0, 1, 3), result.stderr  # diff and check report findings by exit status
    return result.code, _normalized(result.stdout, base)


def test_read_commands_agree_on_every_backend(backend: Backend, two_versions: Path, tmp_path: Path) -> None:
    base = backend.put(two_versions)  # local: a copy, so that the reference itself is read on another path
    for name, template in READS.items():

        def local(template: list[str] = template) -> tuple[int, Any]:
            return _read(template, str(two_versions), None)

        assert _read(template, base, backend.env) == _reference(f"read {name}", local), name
    assert _REFERENCE["read show"][1]["signatures"]  # what was compared is a real report


def _files(version: Path) -> dict[str, str]:
    """sha256 of every file but saved_model.pb (parsed instead: its bytes may order maps differently)."""
    return {
        p.relative_to(version).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(version.rglob("*"))
        if p.is_file() and p.name != "saved_model.pb"
    }


def _parsed(version: Path) -> Any:
    saved = protos.SavedModel()
    saved.ParseFromString((version / "saved_model.pb").read_bytes())
    return saved


def _edit(backend: Backend, template: list[str]) -> tuple[Any, Path]:
    """Run the edit on a fresh copy of tf2_module into a fresh base; its JSON and the published version."""
    source, out = backend.put(MODEL), backend.new_base("out")
    result = run_cli(*_args(template, base=source), "--out", out, "--no-verify", "--json", env=backend.env)
    assert result.code == 0, result.stderr
    return _normalized(result.stdout, source, out), backend.version(out, 1)


@pytest.mark.parametrize("name", EDITS)
def test_edits_publish_the_same_version_on_every_backend(backend: Backend, name: str, tmp_path: Path) -> None:
    local_report, local_version = _reference(f"edit {name}", lambda: _edit(Backend("local", tmp_path), EDITS[name]))
    if backend.name == "local":
        return  # the reference is the local run
    report, published = _edit(backend, EDITS[name])
    assert report == local_report
    assert _files(published) == _files(local_version)
    assert _parsed(published) == _parsed(local_version)
