"""Crash safety, proved by killing: SIGKILL, SIGTERM and SIGHUP every writing command at random moments.

Each writing command runs as a real process on a copy of a fixture model and
is killed after a delay drawn uniformly from [0, the duration of one full
run] (fixed seed), with a signal drawn from SIGNALS: SIGKILL half the time
(nothing of ours runs), SIGTERM or SIGHUP otherwise (the command must remove
its staging folder, say so in one line and exit 128 + N). After every kill the model base must hold only
complete versions (smsurgery's reader and integrity check accept every one,
the TF1 loader loads each new one, and each matches a version the same
command wrote in full), hidden staging folders of ours, and the foreign
entries planted at the start; the folders the command reads from must be
byte-identical. A few more kills are aimed inside the staging window (after
the staging folder appears), so the leftovers and their cleanup are always
exercised. At the end one more writing command runs in every base: it must
remove the staging folders of the dead writers and nothing else.

The proto-route signature edit starts in ~0.3 s without TensorFlow, so it
takes most of the kills; the commands that import TensorFlow cost ~3 s a run.
`SMSURGERY_CRASH_KILLS` (default 54) sets how many random kills to reach;
`SMSURGERY_CRASH_BUDGET` (seconds, default 400) bounds the wall time, and the
test fails if the kills were not all done within it.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smsurgery.core.errors import PublishError
from smsurgery.core.model import read
from smsurgery.publishing.atomic import STAGING_PREFIX
from smsurgery.publishing.new_version import publish_proto
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURES
from tests.crash_harness import (
    BaseWatch,
    Scenario,
    Tally,
    calibrate,
    kill,
    kill_after,
    kill_in_staging,
    pid_running,
    run_to_completion,
    staging_pid,
    start,
)

KILLS = int(os.environ.get("SMSURGERY_CRASH_KILLS", "54"))
BUDGET = float(os.environ.get("SMSURGERY_CRASH_BUDGET", "400"))
SEED = 20240608
PAYLOAD = 16 << 20
# Share of the random kills per scenario; the cheap proto route takes most of them.
WEIGHTS = {"signature": 30, "image-input": 8, "convert-frozen": 4, "convert-keras": 4, "warmup": 8}
# Each kill sends one of these: SIGKILL (nothing runs) half the time, SIGTERM and SIGHUP (handled) the rest.
SIGNALS = (signal.SIGKILL, signal.SIGKILL, signal.SIGTERM, signal.SIGHUP)


def _share(name: str) -> int:
    return math.ceil(KILLS * WEIGHTS[name] / sum(WEIGHTS.values()))


def _scenarios(tmp_path: Path, model_copy) -> tuple[list[Scenario], dict[str, list[str]]]:
    """The scenarios to kill, and for each base the command that cleans up after them."""
    lookup, image, linear = model_copy("tf1_lookup"), model_copy("tf1_image"), model_copy("tf1_linear")
    # A large file to carry over makes the proto route's build phase a sizable part of its run.
    for version in (lookup / "1", linear / "1"):
        (version / "assets.extra").mkdir()
        (version / "assets.extra" / "payload.bin").write_bytes(random.Random(SEED).randbytes(PAYLOAD))
    sources = tmp_path / "sources"
    shutil.copytree(FIXTURES / "sources", sources)
    frozen_base, keras_base = tmp_path / "converted_frozen", tmp_path / "converted_keras"
    scenarios = [
        Scenario(
            "signature",
            ["signature", "rename", f"{lookup}@1", "serving_default", "renamed", "--no-verify"],
            BaseWatch(lookup, exact=True, kept=[lookup / "1"]),
            _share("signature"),
        ),
        Scenario(
            "image-input", ["image-input", f"{image}@1"], BaseWatch(image, kept=[image / "1"]), _share("image-input"), 1
        ),
        Scenario(
            "convert",
            ["convert", str(sources / "frozen.pb"), str(frozen_base), "--inputs", "x=input", "--outputs", "y=output"],
            BaseWatch(frozen_base, kept=[sources]),
            _share("convert-frozen"),
            1,
        ),
        Scenario(
            "convert",
            ["convert", str(sources / "model.keras"), str(keras_base)],
            BaseWatch(keras_base, kept=[sources]),
            _share("convert-keras"),
            1,
        ),
        Scenario(
            "warmup", ["warmup", f"{linear}@1"], BaseWatch(linear, exact=True, kept=[linear / "1"]), _share("warmup"), 1
        ),
    ]
    for scenario in scenarios:
        scenario.logs = tmp_path / "logs" / scenario.watch.base.name
    # The next writer in each base is another command than the one killed there: any command cleans up.
    cleanup = {
        str(lookup): ["warmup", f"{lookup}@1"],
        str(image): ["signature", "rename", f"{image}@1", "serving_default", "after", "--no-verify"],
        str(frozen_base): ["signature", "rename", f"{frozen_base}@1", "serving_default", "after", "--no-verify"],
        str(keras_base): ["signature", "rename", f"{keras_base}@1", "serving_default", "after", "--no-verify"],
        str(linear): ["signature", "rename", f"{linear}@1", "prediction", "after", "--no-verify"],
    }
    return scenarios, cleanup


def _kill_repeatedly(scenario: Scenario, rng: random.Random, tally: Tally, deadline: float) -> None:
    """Random kills until the scenario's count is reached; then the kills aimed inside staging."""
    done = 0
    while done < scenario.kills + scenario.staging_kills:
        if time.monotonic() > deadline:
            pytest.fail(
                f"the {BUDGET:.0f} s budget ran out: {scenario.command} reached {tally.kills} kills; "
                "the machine is too busy (raise SMSURGERY_CRASH_BUDGET or lower SMSURGERY_CRASH_KILLS)"
            )
        label = f"run-{done}-{tally.kills + tally.ran_out}"
        signum = rng.choice(SIGNALS)  # sampled across the kill points: the run time stays that of 54 kills
        if done < scenario.kills:
            outcome = kill_after(scenario, rng.uniform(0, scenario.duration), tally, label, signum)
        else:
            outcome = kill_in_staging(scenario, rng.uniform(0, scenario.staging_window), tally, label, signum)
        done += outcome != "ran out"


def _clean_up_and_check(scenarios: list[Scenario], cleanup: dict[str, list[str]]) -> int:
    """One more writing command per base removes the dead writers' staging folders, nothing else."""
    stale_total = 0
    for scenario in scenarios:
        watch = scenario.watch
        stale = {name for name in watch.staging if not pid_running(staging_pid(name) or 0)}
        stale_total += len(stale)
        watch.reference = None  # another command: its version differs from the killed command's
        new = run_to_completion(scenario, cleanup[str(watch.base)], "cleanup")
        assert len(new) == 1, f"the clean-up command published {new}"
        assert not stale & watch.staging, f"stale staging folders survived the next writer: {stale & watch.staging}"
        for name in watch.staging:  # any left must belong to a live process (a pid taken over since)
            assert pid_running(staging_pid(name) or 0), f"{name} of a dead writer was left behind"
        watch.assert_unchanged()  # the foreign entries and the live writer's staging folder are still there
    return stale_total


def test_sigkill_at_random_moments_leaves_only_complete_versions(tmp_path: Path, model_copy) -> None:
    began = time.monotonic()
    deadline = began + BUDGET
    scenarios, cleanup = _scenarios(tmp_path, model_copy)
    rng = random.Random(SEED)
    tallies: dict[str, Tally] = {}
    for scenario in scenarios:
        scenario.watch.plant()
        calibrate(scenario)
    for scenario in scenarios:
        tally = tallies.setdefault(scenario.command, Tally())
        started = time.monotonic()
        _kill_repeatedly(scenario, rng, tally, deadline)
        tally.seconds += time.monotonic() - started
    random_kills = sum(t.kills - t.staging_kills for t in tallies.values())
    assert random_kills >= KILLS, f"only {random_kills} random kills of {KILLS}"
    sent = {name for t in tallies.values() for name in t.signals}
    assert sent == {"SIGKILL", "SIGTERM", "SIGHUP"}, f"signals sent: {sorted(sent)}"
    assert sum(t.handled for t in tallies.values()) > 0, "no SIGTERM/SIGHUP was answered by a clean exit"
    assert sum(t.staging_left for t in tallies.values()) > 0, "no kill left a staging folder: cleanup not exercised"
    stale = _clean_up_and_check(scenarios, cleanup)
    assert stale > 0, "no stale staging folder was there for the next writer to clean up"
    summary = [tally.line(command) for command, tally in tallies.items()]
    summary += [
        f"{s.command} {s.watch.base.name}: run {s.duration:.2f} s, staging {s.staging_window:.3f} s" for s in scenarios
    ]
    cleaned = sum(s.watch.cleaned for s in scenarios)
    by_signal: dict[str, int] = {}
    for tally in tallies.values():
        for name, count in tally.signals.items():
            by_signal[name] = by_signal.get(name, 0) + count
    summary.append(
        f"total: {sum(t.kills for t in tallies.values())} kills survived "
        f"({', '.join(f'{n} {name}' for name, n in sorted(by_signal.items()))}; "
        f"{sum(t.handled for t in tallies.values())} cleaned up and exited 128+N), {cleaned} staging folders of "
        f"dead writers cleaned by later runs, {time.monotonic() - began:.1f} s"
    )
    print("\n".join(summary))


def test_a_file_named_like_a_version_is_stepped_over(model_copy) -> None:
    """A stray file `2` (left by another tool) is no version: the next one is 3 and the file stays as it was."""
    base = model_copy("tf1_lookup")
    (base / "2").write_text("not a version\n")
    model = read(base / "1")
    assert publish_proto(model, model.proto).version == 3
    assert publish_proto(model, model.proto).version == 4
    assert (base / "2").read_text() == "not a version\n"
    with pytest.raises(PublishError, match="already exists"):
        publish_proto(model, model.proto, PublishTarget(version=2))


def test_the_next_writer_removes_only_staging_folders_it_could_have_made(tmp_path: Path, model_copy) -> None:
    """PREFIX + dead pid + 8 hex digits is ours; a look-alike folder, a file or a symlink never is."""
    base = model_copy("tf1_lookup")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ours = base / f"{STAGING_PREFIX}{int(dead.stdout)}-0badc0de"
    (ours / "variables").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    foreign = {
        f"{STAGING_PREFIX}backup": lambda path: (path.mkdir(), (path / "keep.txt").write_text("mine\n")),
        f"{STAGING_PREFIX}{int(dead.stdout)}-notes": lambda path: path.mkdir(),
        f"{STAGING_PREFIX}notes.txt": lambda path: path.write_text("mine\n"),
        f"{STAGING_PREFIX}{int(dead.stdout)}-0000cafe": lambda path: path.symlink_to(elsewhere),
    }
    for name, make in foreign.items():
        make(base / name)
    model = read(base / "1")
    assert publish_proto(model, model.proto).version == 2
    assert not ours.exists()
    assert sorted(p.name for p in base.iterdir()) == sorted(["1", "2", *foreign])
    assert (base / f"{STAGING_PREFIX}backup" / "keep.txt").read_text() == "mine\n"
    assert (elsewhere / "data").is_dir()


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM, "terminated by SIGTERM"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "terminated by SIGHUP"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_a_signal_in_the_middle_of_a_copy_removes_the_staging_folder(
    tmp_path: Path, model_copy, signum: int, code: int, words: str
) -> None:
    """The signal lands while a 64 MiB file is being copied into staging: cleanup, one line, 128+N."""
    base = model_copy("tf1_lookup")
    (base / "1" / "assets.extra").mkdir()
    (base / "1" / "assets.extra" / "payload.bin").write_bytes(random.Random(SEED).randbytes(64 << 20))
    log = tmp_path / "run.log"
    proc = start(["signature", "rename", f"{base}@1", "serving_default", "renamed", "--no-verify"], log=log)
    prefix = f"{STAGING_PREFIX}{proc.pid}-"
    while proc.poll() is None and not any(p.name.startswith(prefix) for p in base.iterdir()):
        time.sleep(0.001)
    assert proc.poll() is None, "the command ended before its staging folder was seen"
    assert kill(proc, signum) == code, log.read_text()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines == [f"smsurgery: {words}"], lines
    assert sorted(p.name for p in base.iterdir()) == ["1"], "a staging folder or a version was left"


def test_a_signal_that_a_library_turns_into_another_error_is_still_reported_as_the_signal(tmp_path: Path) -> None:
    """CI saw it: SIGHUP inside TensorFlow's import became ImportError, then RuntimeError, then exit 1 with a traceback.

    pybind11 reports any exception raised while its module initialises as
    ImportError("initialization failed"), and TensorFlow's import shims turn
    that into RuntimeError. Here a command's code does the same to the
    `Terminated` our handler raises; the process must still say it was
    terminated and exit 128 + N.
    """
    script = tmp_path / "convert_the_signal.py"
    script.write_text(
        "import os, signal, sys\n"
        "from smsurgery.cli import app, boundary, fast\n"
        "def run(args):\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "        signal.pthread_kill(signal.pthread_self(), 0)  # let the handler run here\n"
        "    except BaseException as error:\n"
        "        raise RuntimeError('Could not import original test/binary location') from error\n"
        "    return True\n"
        "fast.run = run\n"
        "boundary.install_signal_handlers()\n"
        "app.main(['show', 'anything'])\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, proc.stderr
    assert proc.stderr.splitlines() == ["smsurgery: terminated by SIGHUP"], proc.stderr
