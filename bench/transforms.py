"""Benchmark: the proto-only serving repairs against the TensorFlow route, in the same run.

One TF1 model (tagged `train`, every op pinned to /device:GPU:0, batch 1,
--mb of float32 variables, a few hundred nodes) is built under /tmp. Each
transform runs as a whole process, twice:
- smsurgery: `tags set`, `devices strip`, `shape set --batch dynamic`, each
  with --no-verify (a proto edit; shards hard-linked; TensorFlow never imported);
- TensorFlow: import TensorFlow, load the version with the TF1 loader
  (`clear_devices=True` for the device strip), re-export it with
  SavedModelBuilder (under `serve` for the retag).
Prints the median wall and CPU time of each over --rounds and the ratios (goal >= 20x).
On a shared machine the wall time of a short process is mostly waiting; CPU time
is the figure that does not depend on the neighbours.

Children run with the benchmarks' bytecode cache (bench/child_env.py:
PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE unset) after one warm-up run of each route, as an
installed package runs: with PYTHONDONTWRITEBYTECODE=1 and no cache, every
smsurgery process compiles its ~150 modules again, about 0.1 s of CPU, half
its time (--no-cache measures that too).

    python bench/transforms.py                # 64 MB of variables, 3 rounds
    python bench/transforms.py --mb 256 --rounds 1
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

from child_env import child_env, warm

BUILD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    v1 = tf.compat.v1
    export, megabytes = sys.argv[1], int(sys.argv[2])
    rows = max(1, megabytes * (1 << 20) // 4 // 256 // 8)
    graph = tf.Graph()
    with graph.as_default(), tf.device("/device:GPU:0"):
        x = v1.placeholder(tf.float32, [1, 256], name="x")
        h = x
        for i in range(8):
            w = v1.get_variable(f"w{i}", initializer=tf.random.stateless_uniform([rows, 256], seed=[i, 1]))
            h = tf.nn.relu(h + tf.reduce_mean(w[:16], axis=0) * 0.01)
            for j in range(20):
                h = tf.identity(h * 1.0, name=f"layer{i}_{j}")
        y = tf.reduce_sum(h, axis=1, name="y")
        with v1.Session(graph=graph, config=v1.ConfigProto(allow_soft_placement=True)) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(export)
            signature = v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(session, ["train"], signature_def_map={"serving_default": signature})
            builder.save()
    """
)

BUILD_TF2_ADAM = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    export, megabytes = sys.argv[1], int(sys.argv[2])
    rows = max(1, megabytes * (1 << 20) // 4 // 256 // 3)  # weights, Adam's two slots: 3 x the weights

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_uniform([rows, 256], seed=[1, 2]))
            self.optimizer = keras.optimizers.Adam(0.01)

        @tf.function(input_signature=[tf.TensorSpec([None, 256], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.reduce_sum(x * tf.reduce_mean(self.w, axis=0), axis=1)}

    model = Model()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model.serve(tf.ones([2, 256]))["y"])
    model.optimizer.apply_gradients([(tape.gradient(loss, model.w), model.w)])
    tf.saved_model.save(model, export, signatures={"serving_default": model.serve})
    """
)

TF_ROUTE = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    source, target, transform = sys.argv[1], sys.argv[2], sys.argv[3]
    v1 = tf.compat.v1
    graph = tf.Graph()
    config = v1.ConfigProto(allow_soft_placement=True)
    with graph.as_default(), v1.Session(graph=graph, config=config) as session:
        meta = v1.saved_model.loader.load(session, ["train"], source, clear_devices=transform == "devices")
        builder = v1.saved_model.Builder(target)
        builder.add_meta_graph_and_variables(
            session, ["serve" if transform == "tags" else "train"], signature_def_map=dict(meta.signature_def),
            saver=v1.train.Saver(saver_def=meta.saver_def), clear_devices=transform == "devices",
        )
        builder.save()
    """
)

TRANSFORMS = {
    "tags": ["tags", "set", "{base}@1", "serve", "--tags", "train"],
    "devices": ["devices", "strip", "{base}@1", "--tags", "train"],
    "shape": ["shape", "set", "{base}@1", "x", "--batch", "dynamic", "--tags", "train"],
}


ENV: dict[str, str] = {}  # the children's environment, set by main: bench/child_env.py, or as it is


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process; CPU time is the fairer figure on a shared machine."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    stderr = proc.stderr.read() if proc.stderr else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stderr.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def bench(work: Path, megabytes: int, rounds: int) -> None:
    base = work / "model"
    source = base / "1"
    print(f"building a TF1 model (tags train, GPU-pinned, batch 1, {megabytes} MB of variables) ...", flush=True)
    run([sys.executable, "-c", BUILD, str(source), str(megabytes)])
    os.sync()
    print(f"{'transform':10} {'smsurgery --no-verify':>24} {'TF load + re-export':>24} {'ratio wall / CPU':>18}")
    version = 100
    for name, template in TRANSFORMS.items():
        ours, theirs = [], []
        command = [part.format(base=base) for part in template]  # warm-up: fills the bytecode cache
        run([sys.executable, "-m", "smsurgery", *command, "--no-verify", "--version", str(version)])
        version += 1
        run([sys.executable, "-c", TF_ROUTE, str(source), str(work / "warm"), name])
        shutil.rmtree(work / "warm")
        for number in range(rounds):
            command = [part.format(base=base) for part in template]
            ours.append(run([sys.executable, "-m", "smsurgery", *command, "--no-verify", "--version", str(version)]))
            version += 1
            target = work / f"tf_{name}_{number}"
            theirs.append(run([sys.executable, "-c", TF_ROUTE, str(source), str(target), name]))
            shutil.rmtree(target)
        wall, cpu = statistics.median(w for w, _ in ours), statistics.median(c for _, c in ours)
        tf_wall, tf_cpu = statistics.median(w for w, _ in theirs), statistics.median(c for _, c in theirs)
        print(f"{name:10} {wall:>7.2f} s ({cpu:5.2f} s CPU) {tf_wall:>7.2f} s ({tf_cpu:5.2f} s CPU) "
              f"{tf_wall / wall:>8.1f}x / {tf_cpu / cpu:.1f}x", flush=True)  # fmt: skip
    print("goal: >= 20x for each proto-only transform")
    bench_prune(work, megabytes)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench_prune(work: Path, megabytes: int) -> None:
    """`prune` on a TF2 tf.Module with a Keras Adam optimizer: the bytes before and after, and its time."""
    base = work / "adam"
    print(f"building a TF2 tf.Module with Keras Adam slots ({megabytes} MB of variables) ...", flush=True)
    run([sys.executable, "-c", BUILD_TF2_ADAM, str(base / "1"), str(megabytes)])
    dry = subprocess.run([sys.executable, "-m", "smsurgery", "prune", f"{base}@1", "--dry-run"],
                         capture_output=True, text=True, env=ENV)  # fmt: skip
    print("prune --dry-run:", (dry.stdout.strip().splitlines() or [dry.stderr.strip()])[-1])
    wall, cpu = run([sys.executable, "-m", "smsurgery", "prune", f"{base}@1"])  # verified under both loaders
    before, after = _size(base / "1"), _size(base / "2")
    print(f"prune (verified): version folder {before} -> {after} bytes ({after / before:.0%}), "
          f"{wall:.2f} s ({cpu:.2f} s CPU)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of the variables in MB (default 64)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--no-cache", action="store_true", help="run children as the environment says (no bytecode)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="smsurgery-bench-", dir=args.workdir))
    ENV.update({**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"} if args.no_cache else child_env(TF_CPP_MIN_LOG_LEVEL="3"))
    warm(ENV)
    try:
        bench(work, args.mb, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
