"""A killed process's cache folder in /tmp is removed by the next process; a live one's never is.

Real processes: children that open a cache (as any bucket command does
first) and then wait; one is killed with SIGKILL, and a third, the "next
run", must remove that one's folder only. TensorFlow-free, no server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from smsurgery.storage import cache_owner
from tests.conftest import REPO

OPEN_CACHE = """
import sys, time
from smsurgery.storage.mirror import cache_dir
folder = cache_dir("base")
(folder / "shard").write_bytes(b"x" * 4096)
print(folder.parent, flush=True)
if sys.argv[1] == "wait":
    time.sleep(600)
"""


def _start(tmp: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", OPEN_CACHE, mode], stdout=subprocess.PIPE, text=True, env=env)
    root = Path(child.stdout.readline().strip())
    assert root.parent == tmp, root
    if mode == "wait":  # an exiting child may have removed its folder already
        assert (root / cache_owner.OWNER_FILE).is_file(), root
    return child, root


def test_the_next_run_removes_a_killed_process_cache_and_keeps_a_live_one(tmp_path: Path) -> None:
    killed, killed_root = _start(tmp_path, "wait")
    live, live_root = _start(tmp_path, "wait")
    unknown = tmp_path / f"{cache_owner.PREFIX}1-noowner"  # no owner record: cannot be judged
    unknown.mkdir()
    elsewhere = tmp_path / f"{cache_owner.PREFIX}2-othercontainer"
    elsewhere.mkdir()  # a dead pid, but of another pid namespace: meaningless here
    (elsewhere / cache_owner.OWNER_FILE).write_text(json.dumps({"pid": killed.pid, "namespace": "other"}))
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(30)  # reaped: its pid is free
        assert killed_root.is_dir()  # SIGKILL: no atexit ran
        next_run, next_root = _start(tmp_path, "exit")
        assert next_run.wait(60) == 0
        assert not killed_root.exists() and not next_root.exists()  # the killed one's, and its own at exit
        assert list(live_root.glob("base-*/shard"))  # the live process's cache, whole
        assert unknown.is_dir() and elsewhere.is_dir()
    finally:
        live.kill()
        live.wait(30)


def test_a_recycled_pid_is_a_dead_owner_and_a_zombie_too(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    folder = tmp_path / f"{cache_owner.PREFIX}{child.pid}-x"
    folder.mkdir()
    try:
        start = cache_owner._start_time(child.pid)
        namespace = cache_owner._namespace()
        record = {"pid": child.pid, "start": start, "namespace": namespace}
        (folder / cache_owner.OWNER_FILE).write_text(json.dumps(record))
        assert not cache_owner.owner_is_dead(folder)  # alive: the same process
        (folder / cache_owner.OWNER_FILE).write_text(json.dumps({**record, "start": "1"}))
        assert cache_owner.owner_is_dead(folder)  # same pid, another start: another process
        (folder / cache_owner.OWNER_FILE).write_text(json.dumps(record))
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert cache_owner.owner_is_dead(folder)
    finally:
        child.kill()
        child.wait(30)
    assert cache_owner.clean_dead(tmp_path) == [folder] and not folder.exists()
