"""Run smsurgery's writing commands as real processes, kill or signal them, and judge what they leave on disk.

Shared by tests/test_crash_safety.py (SIGKILL at random moments) and
tests/test_concurrent_commands.py (two commands publishing at once). A
`BaseWatch` knows what a model base may hold between runs: integer version
folders that are complete (smsurgery's reader and integrity check accept
them, the TF1 loader loads them, and they match a reference version written
by the same command), hidden staging folders of ours, and the foreign files a
test planted. Versions already seen must never change; the folders a command
reads from must stay byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import is_version_name
from smsurgery.core.model import read
from smsurgery.publishing.atomic import STAGING_PREFIX
from tests.conftest import REPO, tree_digest

# Foreign entries planted in every base: the next writer must leave them alone.
FOREIGN_FOLDER = ".other-tool-tmp"
FOREIGN_FILE = f"{STAGING_PREFIX}notes.txt"  # our prefix, but a file: not ours to remove
FOREIGN_LOOKALIKE = f"{STAGING_PREFIX}backup"  # our prefix, a folder, but no PID-RANDOM: not ours either
# TensorFlow's autograph writes the functions it converts to TMPDIR and deletes them at exit; a SIGKILL
# leaves them. They are TensorFlow's, outside the model base, and not ours to clean up.
AUTOGRAPH_TEMP = "__autograph_generated_file"


def start(args: Sequence[str | Path], *, log: Path, tmpdir: Path | None = None) -> subprocess.Popen:
    """Start `python -m smsurgery ARGS` in a new session, so a kill reaches its whole process group."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "smsurgery", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )


def kill(proc: subprocess.Popen, signum: int = signal.SIGKILL) -> int:
    """Signal the process group and wait; return the exit status (negative: killed by that signal).

    SIGKILL: no handler, no `finally`, no cleanup runs. SIGTERM and SIGHUP
    are handled like SIGINT: the command removes its staging folder and
    exits with 128 + N (or dies with -N if the signal came before the
    handlers were installed, when there is nothing of its own to remove).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
    return proc.wait(timeout=120)


def check_handled(signum: int, code: int, pid: int, staging: set[str], log: Path) -> None:
    """After SIGTERM/SIGHUP: the right exit status, one line saying so, and no staging folder of `pid`."""
    if signum == signal.SIGKILL:
        return
    name = signal.Signals(signum).name
    assert code in (0, 128 + signum, -signum), f"exit {code} after {name}: {log.read_text(errors='replace')[-2000:]}"
    assert not any(staging_pid(entry) == pid for entry in staging), f"{name} left the staging folder of {pid}"
    if code == 128 + signum:
        text = log.read_text(errors="replace")
        assert f"smsurgery: terminated by {name}" in text, text[-2000:]
        assert "Traceback" not in text, text[-2000:]


def staging_pid(name: str) -> int | None:
    """The writer pid in `.smsurgery-staging-PID-RANDOM`, None for other names."""
    if not name.startswith(STAGING_PREFIX):
        return None
    text = name[len(STAGING_PREFIX) :].split("-", 1)[0]
    return int(text) if text.isdigit() else None


def pid_running(pid: int) -> bool:
    """A live process or thread with this id (the publisher's own liveness test, os.kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TF: Any = None


def tf1_load(path: Path, tags: Sequence[str]) -> None:
    """Load a version as TensorFlow Serving does: the TF1 loader into a fresh Graph, init ops run."""
    global _TF
    if _TF is None:
        from smsurgery.graph.session import import_tf

        _TF = import_tf()
    graph = _TF.Graph()
    with _TF.compat.v1.Session(graph=graph) as session:
        _TF.compat.v1.saved_model.loader.load(session, list(tags), str(path))


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class BaseWatch:
    """The model base one command writes into, and what it may contain between runs.

    `reference`: the digest of a complete version written by the same command;
    with `exact` (the proto route serializes deterministically) every later
    version must equal it byte for byte, otherwise hold the same files.
    `kept`: folders the command only reads (the source version, source files).
    """

    base: Path
    tags: tuple[str, ...] = ("serve",)
    exact: bool = False
    kept: Sequence[Path] = ()
    load_new: bool = True
    reference: dict[str, str] | None = None
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    kept_digests: dict[Path, dict[str, str]] = field(default_factory=dict)
    planted: dict[str, Any] = field(default_factory=dict)
    staging: set[str] = field(default_factory=set)
    cleaned: int = 0

    def __post_init__(self) -> None:
        self.kept_digests = {path: tree_digest(path) for path in self.kept}

    def plant(self) -> None:
        """Foreign entries the writers must never remove, and a staging folder of a live process."""
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / FOREIGN_FOLDER).mkdir()
        (self.base / FOREIGN_FOLDER / "state.json").write_text('{"owner": "another tool"}\n')
        (self.base / FOREIGN_FILE).write_text("not a staging folder\n")
        (self.base / FOREIGN_LOOKALIKE).mkdir()  # our prefix, but not a name we give
        (self.base / FOREIGN_LOOKALIKE / "keep.txt").write_text("a user's backup\n")
        live = self.base / f"{STAGING_PREFIX}{os.getpid()}-a1a1a1a1"  # a writer that is alive: this test
        live.mkdir()
        (live / "saved_model.pb").write_bytes(b"being written")
        names = (FOREIGN_FOLDER, FOREIGN_FILE, FOREIGN_LOOKALIKE, live.name)
        self.planted = {name: self._planted_digest(name) for name in names}
        self.check()  # the versions already there

    def _planted_digest(self, name: str) -> Any:
        path = self.base / name
        return tree_digest(path) if path.is_dir() else _file_sha(path)

    def check(self) -> list[str]:
        """Judge the base now; return the names of versions that appeared since the last check."""
        new: list[str] = []
        staging: set[str] = set()
        for entry in sorted(self.base.iterdir()):
            name = entry.name
            if name in self.planted:
                continue
            if is_version_name(name):
                assert entry.is_dir(), f"{entry} is not a folder"
                if name not in self.versions:
                    self.versions[name] = self._check_new_version(entry)
                    new.append(name)
                else:
                    require_intact(read(entry))  # smsurgery's reader still accepts every version
            elif name.startswith(STAGING_PREFIX) and entry.is_dir():
                staging.add(name)
            else:
                raise AssertionError(f"{entry}: a leftover that is neither a version nor a staging folder")
        self.cleaned += len(self.staging - staging)
        self.staging = staging
        for path, digest in self.kept_digests.items():
            assert tree_digest(path) == digest, f"{path} changed: a command wrote into what it reads"
        return new

    def _check_new_version(self, folder: Path) -> dict[str, str]:
        assert (folder / "saved_model.pb").is_file(), f"{folder} has no saved_model.pb"
        model = read(folder)
        require_intact(model)
        model.meta_graph(self.tags)
        digest = tree_digest(folder)
        if self.reference is not None:
            if self.exact:
                assert digest == self.reference, f"{folder} differs from a complete version by the same command"
            else:
                assert sorted(digest) == sorted(self.reference), f"{folder} does not hold the files it should"
        if self.load_new:
            tf1_load(folder, self.tags)
        return digest

    def assert_unchanged(self) -> None:
        """Every version seen is still byte-identical to when it appeared; planted entries untouched."""
        for name, digest in self.versions.items():
            assert tree_digest(self.base / name) == digest, f"version {name} was modified after it appeared"
        for name, digest in self.planted.items():
            assert (self.base / name).exists(), f"{name} (not ours) was removed"
            assert self._planted_digest(name) == digest, f"{name} (not ours) was modified"


@dataclass
class Tally:
    """What happened to one command's runs."""

    kills: int = 0
    nothing_left: int = 0  # killed before its staging folder existed
    staging_left: int = 0  # killed while building: only its hidden staging folder remains
    published: int = 0  # killed after the rename: the version is complete
    ran_out: int = 0  # finished before the kill came (not counted as a kill)
    staging_kills: int = 0  # of `kills`, those aimed at a moment inside the staging window
    seconds: float = 0.0
    signals: dict[str, int] = field(default_factory=dict)  # kills by signal name
    handled: int = 0  # SIGTERM/SIGHUP answered with exit 128+N after cleaning up

    def count_signal(self, signum: int, code: int) -> None:
        name = signal.Signals(signum).name
        self.signals[name] = self.signals.get(name, 0) + 1
        self.handled += code == 128 + signum

    def record(self, pid: int, staging: set[str], new: list[str]) -> str:
        self.kills += 1
        if any(staging_pid(name) == pid for name in staging):
            self.staging_left += 1
            return "staging left"
        if new:
            self.published += 1
            return "published"
        self.nothing_left += 1
        return "nothing left"

    def line(self, command: str) -> str:
        by_signal = ", ".join(f"{n} {name}" for name, n in sorted(self.signals.items()))
        return (
            f"{command}: {self.kills} kills survived ({by_signal}; {self.handled} cleaned up and exited 128+N; "
            f"{self.staging_kills} aimed inside the staging window): "
            f"{self.nothing_left} before staging, {self.staging_left} left a staging folder, "
            f"{self.published} after publishing; {self.ran_out} runs finished first; {self.seconds:.1f} s"
        )


@dataclass
class Scenario:
    """One writing command run again and again on the same source, into one base."""

    command: str  # the family reported: signature, image-input, convert, warmup
    args: list[str]
    watch: BaseWatch
    kills: int
    staging_kills: int = 0
    duration: float = 0.0  # of a full run, measured by `calibrate`
    staging_window: float = 0.0  # how long its staging folder lived in that run
    logs: Path = Path()

    def log(self, label: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{label}.log"

    @property
    def tmpdir(self) -> Path:
        """The command's TMPDIR: a killed run must leave nothing there either."""
        path = self.logs / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check(self) -> list[str]:
        """Judge the base, and the temporary folder outside it."""
        left = sorted(p.name for p in self.tmpdir.iterdir() if not p.name.startswith(AUTOGRAPH_TEMP))
        assert not left, f"{self.command} left files in its TMPDIR: {left}"
        return self.watch.check()


def run_to_completion(scenario: Scenario, args: Sequence[str], label: str) -> list[str]:
    """Run a command once without a kill; return the new version(s) after checking the base."""
    log = scenario.log(label)
    code = start(args, log=log, tmpdir=scenario.tmpdir).wait(timeout=600)
    assert code == 0, f"{args[0]} failed (exit {code}): {log.read_text(errors='replace')[-2000:]}"
    return scenario.check()


def calibrate(scenario: Scenario) -> None:
    """One full run: how long it takes, how long its staging folder lives, and the reference version."""
    log = scenario.log("calibration")
    began = time.monotonic()
    proc = start(scenario.args, log=log, tmpdir=scenario.tmpdir)
    prefix = f"{STAGING_PREFIX}{proc.pid}-"
    first = last = None
    while proc.poll() is None:
        if scenario.watch.base.is_dir() and any(n.startswith(prefix) for n in os.listdir(scenario.watch.base)):
            last = time.monotonic()
            first = first or last
        time.sleep(0.002)
    scenario.duration = time.monotonic() - began
    scenario.staging_window = (last - first) if first and last else 0.0
    assert proc.returncode == 0, f"{scenario.command} failed: {log.read_text(errors='replace')[-2000:]}"
    new = scenario.check()
    assert len(new) == 1, f"a full run of {scenario.command} published {new}"
    scenario.watch.reference = scenario.watch.versions[new[0]]


def kill_after(scenario: Scenario, delay: float, tally: Tally, label: str, signum: int = signal.SIGKILL) -> str:
    """Start the command, signal it after `delay` seconds (unless it ended first), judge the base."""
    log = scenario.log(label)
    proc = start(scenario.args, log=log, tmpdir=scenario.tmpdir)
    try:
        code = proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        code = kill(proc, signum)
        new = scenario.check()
        check_handled(signum, code, proc.pid, scenario.watch.staging, log)
        tally.count_signal(signum, code)
        return tally.record(proc.pid, scenario.watch.staging, new)
    assert code == 0, f"{scenario.command} failed (exit {code}): {log.read_text(errors='replace')[-2000:]}"
    scenario.check()
    tally.ran_out += 1
    return "ran out"


def kill_in_staging(scenario: Scenario, delay: float, tally: Tally, label: str, signum: int = signal.SIGKILL) -> str:
    """Signal the command `delay` seconds after its staging folder appears: a kill mid-build."""
    log = scenario.log(label)
    proc = start(scenario.args, log=log, tmpdir=scenario.tmpdir)
    prefix = f"{STAGING_PREFIX}{proc.pid}-"
    base = scenario.watch.base
    while proc.poll() is None:
        if base.is_dir() and any(name.startswith(prefix) for name in os.listdir(base)):
            time.sleep(delay)
            break
        time.sleep(0.002)
    if proc.poll() is not None:
        assert proc.returncode == 0, f"{scenario.command} failed: {log.read_text(errors='replace')[-2000:]}"
        scenario.check()
        tally.ran_out += 1
        return "ran out"
    code = kill(proc, signum)
    tally.staging_kills += 1
    new = scenario.check()
    check_handled(signum, code, proc.pid, scenario.watch.staging, log)
    tally.count_signal(signum, code)
    return tally.record(proc.pid, scenario.watch.staging, new)
