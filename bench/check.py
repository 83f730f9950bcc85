"""Benchmark: `smsurgery check --json` (no --load) against `saved_model_cli show --all`.

Whole processes, on every real model, alternating in the same run so a busy
machine slows both alike. Prints per-model medians and the median ratio
(saved_model_cli / check): how many times faster `check` answers whether
Serving will load a version than TensorFlow's own tool lists it. Goal: >= 10x.

    python bench/check.py               # 3 rounds
    python bench/check.py --rounds 5
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

REPO = Path(__file__).resolve().parents[1]
REALMODELS = Path(os.environ.get("SMSURGERY_REALMODELS", REPO.parent / "shared" / "realmodels"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
CHECK_EXITS = (0, 1, 3)  # clean, warnings, errors: all are answers


def saved_model_cli() -> str:
    beside = Path(sys.executable).parent / "saved_model_cli"
    found = str(beside) if beside.is_file() else shutil.which("saved_model_cli")
    if found is None:
        sys.exit("saved_model_cli not found next to this Python or on PATH (pip install tensorflow)")
    return found


def version_dir(model: Path) -> Path:
    if (model / "saved_model.pb").is_file():
        return model
    return max((p for p in model.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def timed(command: list[str], ok: tuple[int, ...]) -> float | None:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, env=ENV)
    elapsed = time.perf_counter() - start
    return elapsed if proc.returncode in ok else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cli = saved_model_cli()
    models = sorted(p for p in REALMODELS.iterdir() if p.is_dir() and p.name != "not-savedmodels")
    ratios: list[float] = []
    print(f"{'model':58} {'check':>8} {'saved_model_cli':>16} {'ratio':>7}")
    for model in models:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(timed([sys.executable, "-m", "smsurgery", "check", "--json", str(model)], CHECK_EXITS))
            theirs.append(timed([cli, "show", "--all", "--dir", str(version_dir(model))], (0,)))
        if None in ours:
            raise SystemExit(f"smsurgery check failed on {model}")
        if None in theirs:  # saved_model_cli cannot read it (custom ops): no baseline to compare with
            print(f"{model.name:58} {statistics.median(ours):7.3f}s {'fails':>16}")
            continue
        ratio = statistics.median(theirs) / statistics.median(ours)  # type: ignore[type-var]
        ratios.append(ratio)
        print(f"{model.name:58} {statistics.median(ours):7.3f}s {statistics.median(theirs):15.3f}s {ratio:6.1f}x")
    print(f"median ratio over {len(ratios)} models, {rounds} rounds: {statistics.median(ratios):.1f}x faster")


if __name__ == "__main__":
    main()
