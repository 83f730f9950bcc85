"""Benchmark: rename a signature of a ~1 GB TF2 model, smsurgery against the TensorFlow route.

Both are whole processes on the same model in the same run:
- smsurgery: `smsurgery signature rename BASE serving_default predict --no-verify`
  (a proto edit; variable shards hard-linked; TensorFlow never imported);
- TensorFlow: import TensorFlow, load the version into a session with the
  TF1 loader, re-export it with `SavedModelBuilder` under the new key.
Prints wall time and peak RSS of each (median of --rounds), the ratio, the
time verification adds (the same rename without --no-verify), and the new
disk space the smsurgery version takes. The model is built under /tmp (or
--workdir) and removed at the end.

    python bench/edit_large.py                 # ~1 GB of float32 variables, 3 rounds
    python bench/edit_large.py --mb 256 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BUILD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    export, megabytes = sys.argv[1], int(sys.argv[2])
    rows = megabytes * (1 << 20) // 4 // 1024 // 4          # four variables of [rows, 1024] float32

    class Big(tf.Module):
        def __init__(self):
            self.w = [tf.Variable(tf.random.stateless_uniform([rows, 1024], seed=[i, 1]), name=f"w{i}")
                      for i in range(4)]

        @tf.function(input_signature=[tf.TensorSpec([None, 1024], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.add_n([tf.reduce_sum(x * w[:1], axis=1) for w in self.w])}

    module = Big()
    tf.saved_model.save(module, export, signatures={"serving_default": module.serve})
    """
)

TF_ROUTE = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    source, target = sys.argv[1], sys.argv[2]
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        meta = v1.saved_model.loader.load(session, ["serve"], source)
        signatures = {k: v for k, v in meta.signature_def.items() if k != "__saved_model_init_op"}
        signatures["predict"] = signatures.pop("serving_default")
        builder = v1.saved_model.Builder(target)
        builder.add_meta_graph_and_variables(
            session, ["serve"], signature_def_map=signatures, saver=v1.train.Saver(saver_def=meta.saver_def)
        )
        builder.save()
    """
)


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, measured with wait4."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def new_disk_bytes(new: Path, old: Path) -> int:
    """Blocks of `new` not shared (by hard link) with `old`."""
    old_inodes = {p.stat().st_ino for p in old.rglob("*") if p.is_file()}
    return sum(p.stat().st_blocks * 512 for p in new.rglob("*") if p.is_file() and p.stat().st_ino not in old_inodes)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="size of the variables in MB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smsurgery-bench-", dir=args.workdir))
    try:
        bench(work, args.mb, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, megabytes: int, rounds: int) -> None:
    base = work / "big"
    print(f"building a TF2 model with {megabytes} MB of float32 variables in {base} ...", flush=True)
    build_wall, _ = run([sys.executable, "-c", BUILD, str(base / "1"), str(megabytes)])
    source = base / "1"
    os.sync()  # a deployed model is on disk, not in dirty page cache: fsync of linked shards must not pay for it
    print(f"built in {build_wall:.1f} s: {folder_bytes(source) / 1e6:.0f} MB on disk", flush=True)
    smsurgery = [sys.executable, "-m", "smsurgery", "signature", "rename", f"{base}@1", "serving_default", "predict"]
    ours, theirs, verified = [], [], []
    for number in range(rounds):
        ours.append(run([*smsurgery, "--no-verify", "--version", str(100 + number)]))
        theirs.append(run([sys.executable, "-c", TF_ROUTE, str(source), str(work / f"tf_route_{number}")]))
        verified.append(run([*smsurgery, "--version", str(200 + number)]))
        shutil.rmtree(work / f"tf_route_{number}")
    wall = statistics.median(w for w, _ in ours)
    peak = max(m for _, m in ours)
    tf_wall = statistics.median(w for w, _ in theirs)
    tf_peak = max(m for _, m in theirs)
    verify_wall = statistics.median(w for w, _ in verified)
    disk = new_disk_bytes(base / "100", source)
    pb = (base / "100" / "saved_model.pb").stat().st_size
    print(f"{'route':44} {'wall (median)':>14} {'peak RSS':>10}")
    print(f"{'smsurgery signature rename --no-verify':44} {wall:>12.2f} s {peak:>7.0f} MB")
    print(f"{'TensorFlow: TF1 load + SavedModelBuilder':44} {tf_wall:>12.2f} s {tf_peak:>7.0f} MB")
    print(f"{'smsurgery signature rename (verified)':44} {verify_wall:>12.2f} s")
    print(f"speed-up: {tf_wall / wall:.1f}x (goal >= 20x); peak memory {peak:.0f} MB (goal < 200 MB)")
    print(f"verification adds {verify_wall - wall:.2f} s")
    print(f"new disk use of the smsurgery version: {disk / 1e3:.0f} KB (saved_model.pb is {pb / 1e3:.0f} KB; "
          f"the variables index is copied, the shards hard-linked)")  # fmt: skip


if __name__ == "__main__":
    main()
