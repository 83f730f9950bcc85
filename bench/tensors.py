"""Benchmark: `smsurgery tensors` and `output add` through nested functions, against TensorFlow's own ways.

1. `smsurgery tensors --json` on a Keras 3 `model.export` of MobileNetV2
   (alpha 0.35, 96x96, random weights: thousands of function nodes) against
   `saved_model_cli show --all` on the same folder.
2. `smsurgery output add --no-verify` of a tensor three calls deep in a
   tf.Module export (signature wrapper -> serve -> middle -> inner), against
   what a user writes without smsurgery: `tf.saved_model.load`, a new
   `tf.function` returning the old output and the inner value, and
   `tf.saved_model.save` with every signature.

Whole processes, alternating, medians over rounds; peak RSS of each process
from wait4. Prints the ratios (baseline / smsurgery).

    python bench/tensors.py             # 3 rounds
    python bench/tensors.py --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(REPO)}
BUILD = """
import contextlib, os, sys
from pathlib import Path
import keras
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10)
with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
    model.export(sys.argv[1] + "/1")
from tests.tensor_models import nested_module
nested_module(Path(sys.argv[2]))
"""
BASELINE_ADD = """
import sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
old = loaded.signatures["serving_default"]

@tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
def serve(x):
    return {"y": old(x=x)["y"], "hidden": loaded.inner(x)}

tf.saved_model.save(loaded, sys.argv[2], signatures={"serving_default": serve,
                                                     "features": loaded.signatures["features"]})
"""


def run(command: list[str], cwd: Path = REPO) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def saved_model_cli() -> str:
    beside = Path(sys.executable).parent / "saved_model_cli"
    found = str(beside) if beside.is_file() else shutil.which("saved_model_cli")
    if found is None:
        sys.exit("saved_model_cli not found next to this Python or on PATH")
    return found


def function_nodes(path: Path) -> int:
    sys.path.insert(0, str(REPO))
    from smsurgery.core.model import read

    meta = read(path).meta_graph().proto
    return sum(len(f.node_def) for f in meta.graph_def.library.function)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="smsurgery-bench-") as folder:
        root = Path(folder)
        keras_base, nested_base = root / "mobilenet", root / "nested"
        print("building MobileNetV2 (Keras 3 model.export) and a nested tf.Module ...", flush=True)
        run([sys.executable, "-c", BUILD, str(keras_base), str(nested_base)])
        print(f"MobileNetV2 export: {function_nodes(keras_base):,} function nodes")
        listing = {"smsurgery": [], "baseline": []}
        adding = {"smsurgery": [], "baseline": []}
        for number in range(rounds):
            listing["smsurgery"].append(run([sys.executable, "-m", "smsurgery", "tensors", str(keras_base), "--json"]))
            show = [saved_model_cli(), "show", "--all", "--dir", str(keras_base / "1")]
            listing["baseline"].append(run(show))
            out = root / f"out{number}"
            add = [sys.executable, "-m", "smsurgery", "output", "add", str(nested_base), "hidden", "hidden",
                   "--no-verify", "--out", str(out / "smsurgery")]  # fmt: skip
            adding["smsurgery"].append(run(add))
            adding["baseline"].append(run([sys.executable, "-c", BASELINE_ADD, str(nested_base / "1"),
                                           str(out / "baseline" / "1")]))  # fmt: skip
        report("tensors vs saved_model_cli show --all", listing)
        report("output add (3 levels, --no-verify) vs load + tf.function + save", adding)


def report(title: str, runs: dict[str, list[tuple[float, float]]]) -> None:
    ours = statistics.median(t for t, _ in runs["smsurgery"])
    theirs = statistics.median(t for t, _ in runs["baseline"])
    peak_ours = max(m for _, m in runs["smsurgery"])
    peak_theirs = max(m for _, m in runs["baseline"])
    print(f"{title}:")
    print(f"  smsurgery {ours:.2f} s (peak {peak_ours:.0f} MB), baseline {theirs:.2f} s (peak {peak_theirs:.0f} MB)")
    print(f"  ratio {theirs / ours:.1f}x faster, memory {peak_theirs / peak_ours:.1f}x less")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
