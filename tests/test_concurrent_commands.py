"""Two writing commands publishing into one model base at once, as real CLI processes.

tests/test_concurrent_publish.py races the publisher itself; here the racers
are whole commands (`signature rename`, `alias rename`, `image-input`) started
together. Each round must end with two distinct complete versions, or, when
both ask for the same version number, one version and one clean refusal
(exit 2, one line): never a mixed or partial folder, never a leftover.
"Complete" is checked strictly: a proto-route edit's version must be
byte-identical to the same edit run alone, and a TensorFlow-route version
must pass smsurgery's reader and integrity check and load with the TF1
loader. A watcher thread lists the base every millisecond and reports how
often both writers' staging folders were there at the same moment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from smsurgery.core.model import read
from smsurgery.publishing.atomic import STAGING_PREFIX
from tests.conftest import REPO, CliResult, assert_one_line_error, tree_digest
from tests.crash_harness import BaseWatch, tf1_load

ROUNDS = 6
PAYLOAD = 8 << 20  # a large file to carry over widens the window in which the two writers overlap


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "smsurgery", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        cwd=REPO,
    )


def _finish(proc: subprocess.Popen) -> CliResult:
    stdout, stderr = proc.communicate(timeout=600)
    return CliResult(proc.returncode, stdout, stderr)


def _version(result: CliResult) -> int:
    assert result.code == 0, result.stderr
    return int(json.loads(result.stdout)["version"])


class StagingWatcher:
    """Lists a base every millisecond; `most` is the largest number of staging folders seen at once."""

    def __init__(self, base: Path) -> None:
        self.base, self.most = base, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                count = sum(name.startswith(STAGING_PREFIX) for name in os.listdir(self.base))
            except OSError:
                count = 0
            self.most = max(self.most, count)
            time.sleep(0.001)

    def __enter__(self) -> StagingWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _padded_lookup(model_copy) -> Path:
    base = model_copy("tf1_lookup")
    (base / "1" / "assets.extra").mkdir()
    (base / "1" / "assets.extra" / "payload.bin").write_bytes(random.Random(8).randbytes(PAYLOAD))
    return base


def _reference(args: list[str], out: Path) -> dict[str, str]:
    """The same edit run alone into another base: what a complete version of it holds, byte for byte."""
    result = _finish(_spawn([*args, "--out", str(out), "--json"]))
    folder = out / str(_version(result))
    tf1_load(folder, ("serve",))
    return tree_digest(folder)


EDITS = {
    "signature": ["signature", "rename", "{base}@1", "serving_default", "renamed", "--no-verify"],
    "alias": ["alias", "rename", "{base}@1", "words", "tokens", "--no-verify"],
}


def _edits(base: Path, tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    edits = {name: [arg.format(base=base) for arg in args] for name, args in EDITS.items()}
    return edits, {name: _reference(args, tmp_path / f"reference-{name}") for name, args in edits.items()}


def test_two_edits_at_once_publish_two_distinct_complete_versions(tmp_path: Path, model_copy) -> None:
    base = _padded_lookup(model_copy)
    edits, references = _edits(base, tmp_path)
    watch = BaseWatch(base, kept=[base / "1"], load_new=False)
    watch.check()
    overlapping = 0
    for _round in range(ROUNDS):
        with StagingWatcher(base) as watcher:
            procs = {name: _spawn([*args, "--json"]) for name, args in edits.items()}
            versions = {name: _version(_finish(proc)) for name, proc in procs.items()}
        overlapping += watcher.most >= 2
        assert len(set(versions.values())) == 2, versions
        assert sorted(watch.check()) == sorted(str(v) for v in versions.values())
        for name, version in versions.items():
            assert watch.versions[str(version)] == references[name], f"version {version} is not the {name} edit"
        assert not watch.staging, watch.staging
    watch.assert_unchanged()
    print(f"{ROUNDS} rounds of two edits at once; both staging folders existed together in {overlapping}")


def test_two_edits_asking_for_the_same_version_one_clean_refusal(tmp_path: Path, model_copy) -> None:
    base = _padded_lookup(model_copy)
    edits, references = _edits(base, tmp_path)
    watch = BaseWatch(base, kept=[base / "1"], load_new=False)
    watch.check()
    for number in range(10, 10 + ROUNDS):
        procs = {name: _spawn([*args, "--version", str(number), "--json"]) for name, args in edits.items()}
        results = {name: _finish(proc) for name, proc in procs.items()}
        winners = [name for name, result in results.items() if result.code == 0]
        assert len(winners) == 1, {name: (r.code, r.stderr[-300:]) for name, r in results.items()}
        (loser,) = set(results) - set(winners)
        assert_one_line_error(results[loser], "already exists", str(number))
        assert _version(results[winners[0]]) == number
        assert watch.check() == [str(number)]
        assert watch.versions[str(number)] == references[winners[0]], "the version is not the winner's edit alone"
        assert not watch.staging, "the refused writer left its staging folder"
    watch.assert_unchanged()


def _race_with_image_input(
    base: Path, image_args: list[str], edit_args: list[str], *, pause: bool = False
) -> tuple[CliResult, CliResult]:
    """Start image-input; once its staging folder exists (it verifies there), start a proto edit.

    With `pause`, image-input is stopped (SIGSTOP) while the edit runs to its end and continued
    afterwards: a slow writer whose staging folder outlives another writer's whole run, every time.
    """
    image = _spawn(image_args)
    prefix = f"{STAGING_PREFIX}{image.pid}-"
    while image.poll() is None and not any(name.startswith(prefix) for name in os.listdir(base)):
        time.sleep(0.002)
    if not pause:
        edit = _spawn(edit_args)
        return _finish(image), _finish(edit)
    assert image.poll() is None, "image-input ended before it could be paused"
    os.kill(image.pid, signal.SIGSTOP)
    try:
        edited = _finish(_spawn(edit_args))
        assert any(name.startswith(prefix) for name in os.listdir(base)), "a live writer's staging was removed"
    finally:
        os.kill(image.pid, signal.SIGCONT)
    return _finish(image), edited


def test_image_input_and_a_signature_edit_at_once(tmp_path: Path, model_copy) -> None:
    """The edit publishes while image-input is still verifying in its staging folder: both versions whole."""
    base = model_copy("tf1_image")
    edit = ["signature", "rename", f"{base}@1", "serving_default", "renamed", "--no-verify"]
    reference = _reference(edit, tmp_path / "reference")
    watch = BaseWatch(base, kept=[base / "1"])
    watch.check()
    for pause in (False, True):
        image, edited = _race_with_image_input(
            base, ["image-input", f"{base}@1", "--json"], [*edit, "--json"], pause=pause
        )
        image_version, edit_version = _version(image), _version(edited)
        assert image_version != edit_version
        assert sorted(watch.check()) == sorted([str(image_version), str(edit_version)])
        assert watch.versions[str(edit_version)] == reference
        signatures = read(base / str(image_version)).meta_graph(("serve",)).signature_keys()
        assert sorted(signatures) == ["serving_b64", "serving_default"]
        assert not watch.staging
    watch.assert_unchanged()


def test_image_input_and_an_edit_asking_for_the_same_version(tmp_path: Path, model_copy) -> None:
    """Both ask for version 7: one publishes it, the other is refused in one line and leaves nothing.

    Once as a plain race, once with image-input paused mid-build so that it is refused at the very
    end, when it renames its finished staging folder.
    """
    base = model_copy("tf1_image")
    watch = BaseWatch(base, kept=[base / "1"])
    watch.check()
    edit = ["signature", "rename", f"{base}@1", "serving_default", "renamed", "--no-verify", "--json"]
    for number, pause in ((7, False), (8, True)):
        image, edited = _race_with_image_input(
            base,
            ["image-input", f"{base}@1", "--version", str(number), "--json"],
            [*edit, "--version", str(number)],
            pause=pause,
        )
        results = {"image-input": image, "signature": edited}
        winners = [name for name, result in results.items() if result.code == 0]
        assert len(winners) == 1, {name: (r.code, r.stderr[-300:]) for name, r in results.items()}
        if pause:
            assert winners == ["signature"], "the paused writer cannot have published first"
        (loser,) = set(results) - set(winners)
        assert_one_line_error(results[loser], "already exists", str(number))
        assert watch.check() == [str(number)]
        expected = ["serving_b64", "serving_default"] if winners == ["image-input"] else ["renamed"]
        assert sorted(read(base / str(number)).meta_graph(("serve",)).signature_keys()) == expected
        assert not watch.staging, "the refused writer left its staging folder"
    watch.assert_unchanged()
