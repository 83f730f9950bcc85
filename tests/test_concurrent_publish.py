"""Two writers publishing into one model base at once: two complete versions, or one clean refusal.

Real processes (and threads) publish a copy of a fixture model with the
proto publisher (no TensorFlow, so each process starts in a fraction of a
second), released together by a start file. Afterwards every integer folder
must be a complete copy of the source, no staging folder may remain, and the
source version must be byte-identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from smsurgery.core.errors import PublishError
from smsurgery.core.model import read
from smsurgery.publishing.atomic import STAGING_PREFIX, clean_stale_staging, staged_version, write_bytes_synced
from smsurgery.publishing.new_version import publish_proto
from smsurgery.publishing.target import PublishTarget
from tests.conftest import REPO, tree_digest

ROUNDS = 6

_WRITER = """
import json, os, sys, time
from pathlib import Path
from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import read
from smsurgery.publishing.new_version import publish_proto
from smsurgery.publishing.target import PublishTarget
source, out, go, version = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
model = read(source)
Path(f"{go}.ready-{os.getpid()}").touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
try:
    target = PublishTarget(base=out, version=int(version) if version else None, link=False)
    published = publish_proto(model, model.proto, target)
    print(json.dumps({"version": published.version}))
except SmsurgeryError as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def _race(source: Path, out: Path, go: Path, versions: tuple[str, str]) -> list[dict]:
    """Start two writers, wait until both are ready, release them together."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(source), str(out), str(go), version],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for version in versions
    ]
    deadline = time.monotonic() + 60
    while len(list(go.parent.glob(go.name + ".ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    return results


def _expected_version_tree(source: Path) -> dict[str, str]:
    """What a published copy of `source` holds: its files, minus fingerprint.pb."""
    return {k: v for k, v in tree_digest(source).items() if k != "fingerprint.pb"}


def _assert_complete(out: Path, source: Path, versions: list[int]) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(str(v) for v in versions), "a stray or staging folder"
    expected = _expected_version_tree(source)
    for version in versions:
        assert tree_digest(out / str(version)) == expected, f"version {version} is not a complete copy"


def test_two_processes_publishing_at_once_get_two_complete_versions(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    source = base / "1"
    before = tree_digest(base)
    out = tmp_path / "out"
    for round_number in range(ROUNDS):
        results = _race(source, out, tmp_path / f"go-{round_number}", ("", ""))
        got = sorted(r["version"] for r in results)
        assert got == [2 * round_number + 1, 2 * round_number + 2], results
    _assert_complete(out, source, list(range(1, 2 * ROUNDS + 1)))
    assert tree_digest(base) == before


def test_two_processes_asking_for_the_same_version_one_clean_refusal(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    source = base / "1"
    out = tmp_path / "out"
    for round_number in range(ROUNDS):
        version = str(round_number + 7)
        results = _race(source, out, tmp_path / f"go-{round_number}", (version, version))
        winners = [r for r in results if "version" in r]
        losers = [r for r in results if "error" in r]
        assert len(winners) == 1 and len(losers) == 1, results
        assert losers[0]["error"] == "PublishError" and "already exists" in losers[0]["message"], losers
    _assert_complete(out, source, list(range(7, 7 + ROUNDS)))


def test_threads_of_one_process_do_not_remove_each_others_staging(tmp_path: Path, model_copy) -> None:
    """A writer's staging folder is alive while its block runs, even for a writer in the same process."""
    base = model_copy("tf1_lookup")
    model = read(base)
    out = tmp_path / "out"
    slow_staged, fast_done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def slow() -> None:
        with staged_version(out) as staging:
            write_bytes_synced(staging.path / "first", b"1")
            slow_staged.set()
            fast_done.wait(60)
            write_bytes_synced(staging.path / "second", b"2")
        results["slow"] = staging.version

    def fast() -> None:
        slow_staged.wait(60)
        try:
            results["fast"] = publish_proto(model, model.proto, PublishTarget(base=out)).version
        finally:
            fast_done.set()

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == {"fast": 1, "slow": 2}
    assert sorted(p.name for p in (out / "2").iterdir()) == ["first", "second"]
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_staging_of_a_dead_writer_is_cleaned_by_the_next_one(tmp_path: Path, model_copy) -> None:
    """A SIGKILLed writer leaves a hidden staging folder; the next publisher removes only that."""
    base = model_copy("tf1_lookup")
    model = read(base)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)  # a process that has exited
    leftover = out / f"{STAGING_PREFIX}{dead_pid}-deadbeef"
    (leftover / "variables").mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    other = out / ".someone-elses-folder"
    other.mkdir()
    published = publish_proto(model, model.proto, PublishTarget(base=out))
    assert published.version == 1
    assert not leftover.exists()
    assert other.exists(), "only our own kind of leftover may be removed"
    assert clean_stale_staging(out) == []


def test_an_existing_version_is_never_replaced(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    model = read(base)
    before = tree_digest(base)
    with pytest.raises(PublishError, match="already exists"):
        publish_proto(model, model.proto, PublishTarget(version=1))
    (base / "2").mkdir()  # an empty folder: rename(2) would replace it silently
    with pytest.raises(PublishError):
        publish_proto(model, model.proto, PublishTarget(version=2))
    assert tree_digest(base) == before
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
