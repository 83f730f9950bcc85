"""Benchmark: `smsurgery show --json` against `saved_model_cli show --all`, whole processes.

Both read the same version folders in the same run, alternating, so a busy
machine slows both alike. Prints per-model medians and the median ratio
(baseline / smsurgery): how many times faster `show` answers.

    python bench/show.py                # 3 rounds
    python bench/show.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from child_env import child_env, warm

REPO = Path(__file__).resolve().parents[1]
REALMODELS = Path(os.environ.get("SMSURGERY_REALMODELS", REPO.parent / "shared" / "realmodels"))
FIXTURES = REPO / "fixtures" / "models"
MODELS = [
    REALMODELS / "saved_model_half_plus_two_cpu",
    REALMODELS / "saved_model_half_plus_two_tf2_cpu",
    REALMODELS / "java_saved_model_using_python",
    REALMODELS / "tfx_trainer_estimator",
    REALMODELS / "rust_regression_savedmodel",
    FIXTURES / "tf1_lookup",
    FIXTURES / "tf2_module",
    FIXTURES / "keras_image",
]
ENV = child_env(TF_CPP_MIN_LOG_LEVEL="2")


def saved_model_cli() -> str:
    """TensorFlow's own tool: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "saved_model_cli"
    found = str(beside) if beside.is_file() else shutil.which("saved_model_cli")
    if found is None:
        sys.exit("saved_model_cli not found next to this Python or on PATH (pip install tensorflow)")
    return found


def version_dir(model: Path) -> Path:
    """saved_model_cli wants the version folder; take the newest, as smsurgery does."""
    if (model / "saved_model.pb").is_file():
        return model
    return max((p for p in model.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def timed(command: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    warm(ENV)
    cli = saved_model_cli()
    ours_cmd = [sys.executable, "-m", "smsurgery", "show", "--json"]
    models = [m for m in MODELS if m.exists()]
    ratios: list[float] = []
    print(f"{'model':40} {'smsurgery':>10} {'saved_model_cli':>16} {'ratio':>7}")
    for model in models:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(timed([*ours_cmd, str(model)]))
            theirs.append(timed([cli, "show", "--all", "--dir", str(version_dir(model))]))
        ratio = statistics.median(theirs) / statistics.median(ours)
        ratios.append(ratio)
        print(f"{model.name:40} {statistics.median(ours):9.3f}s {statistics.median(theirs):15.3f}s {ratio:6.1f}x")
    print(f"median ratio over {len(ratios)} models, {rounds} rounds: {statistics.median(ratios):.1f}x faster")


if __name__ == "__main__":
    main()
