"""Benchmark: `smsurgery plan`/`apply` of a three-step proto-only recipe over many small model bases.

Two ratios, each against a baseline measured in the same run:
- apply --jobs 2 against apply --jobs 1 (goal: at least 1.8x on 2 cores);
- plan against running the equivalent single edit commands with --no-verify,
  one process per command per model, as a shell loop would (goal: at least 20x).

    python bench/recipes.py               # 200 bases
    python bench/recipes.py --bases 50
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "models" / "keras_mlp"
RECIPE = """\
[[steps]]
op = "rename_alias"
signature = "serve"
old = "output_0"
new = "probs"
[steps.match]
alias = "serve/output_0"

[[steps]]
op = "set_default"
key = "serve"
previous = "serving_old"
[steps.match]
signature = "serve"

[[steps]]
op = "strip_devices"
"""
SINGLE_COMMANDS = [
    ["alias", "rename", "{base}", "output_0", "probs", "-s", "serve", "--no-verify"],
    ["signature", "set-default", "{base}", "serve", "--previous", "serving_old", "--no-verify"],
    ["devices", "strip", "{base}", "--no-verify"],
]


def smsurgery(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smsurgery", *args], capture_output=True, text=True, cwd=REPO)


def fleet(root: Path, count: int) -> list[str]:
    shutil.rmtree(root, ignore_errors=True)
    for i in range(count):
        shutil.copytree(FIXTURE, root / f"m{i:03d}")
    os.sync()  # the copies' writeback is set-up, not part of the timed run's fsyncs
    return [str(root / f"m{i:03d}") for i in range(count)]


def timed_apply(recipe: Path, root: Path, count: int, jobs: int) -> float:
    bases = fleet(root, count)
    started = time.perf_counter()
    result = smsurgery("apply", str(recipe), *bases, "--jobs", str(jobs), "--no-verify", "--json")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=200)
    count = parser.parse_args().bases
    with tempfile.TemporaryDirectory(prefix="smsurgery-bench-recipes-") as work:
        root, recipe = Path(work) / "fleet", Path(work) / "recipe.toml"
        recipe.write_text(RECIPE)
        one = timed_apply(recipe, root, count, 1)
        two = timed_apply(recipe, root, count, 2)
        print(f"apply {count} bases: --jobs 1 {one:.2f} s, --jobs 2 {two:.2f} s: {one / two:.2f}x (goal >= 1.8x)")
        bases = fleet(root, count)
        started = time.perf_counter()
        planned = smsurgery("plan", str(recipe), *bases, "--json")
        plan_seconds = time.perf_counter() - started
        assert planned.returncode == 1, planned.stderr[-2000:]
        started = time.perf_counter()
        for base in bases:
            for command in SINGLE_COMMANDS:
                result = smsurgery(*[part.replace("{base}", base) for part in command])
                assert result.returncode == 0, result.stderr[-2000:]
        loop_seconds = time.perf_counter() - started
        print(
            f"plan {count} bases {plan_seconds:.2f} s vs {len(SINGLE_COMMANDS)} single commands per base "
            f"{loop_seconds:.2f} s: {loop_seconds / plan_seconds:.1f}x (goal >= 20x)"
        )


if __name__ == "__main__":
    main()
