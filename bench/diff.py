"""Benchmark: `smsurgery diff A B` against `saved_model_cli show --all` on both sides.

Today people eyeball two `saved_model_cli` dumps; the baseline is those two
processes, the contender one `smsurgery diff` process, on the same pairs in
the same run, alternating. Prints per-pair medians and the median ratio
(baseline / smsurgery). Goal: at least 10x.

    python bench/diff.py                # 3 rounds
    python bench/diff.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from show import ENV, FIXTURES, REALMODELS, saved_model_cli, timed, version_dir, warm

PAIRS: list[tuple[Path, Path, tuple[str, ...]]] = [
    (REALMODELS / "saved_model_half_plus_two_cpu", REALMODELS / "saved_model_half_plus_three", ()),
    (REALMODELS / "saved_model_half_plus_two_cpu", REALMODELS / "saved_model_half_plus_two_tf2_cpu", ()),
    (REALMODELS / "saved_model_half_plus_two_cpu", REALMODELS / "saved_model_half_plus_two_tf2_cpu", ("--deep",)),
    (REALMODELS / "tfx_trainer_estimator", REALMODELS / "tfx_trainer_estimator", ()),
    (FIXTURES / "keras_mlp", FIXTURES / "keras_image", ()),
    (FIXTURES / "tf2_module", FIXTURES / "tf2_module", ("--deep",)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    warm(ENV)
    cli = saved_model_cli()
    ratios: list[float] = []
    print(f"{'old -> new':72} {'smsurgery':>10} {'2x saved_model_cli':>19} {'ratio':>7}")
    for old, new, options in PAIRS:
        if not (old.exists() and new.exists()):
            continue
        ours, theirs = [], []
        for _ in range(rounds):
            command = [sys.executable, "-m", "smsurgery", "diff", *options, "--json", str(old), str(new)]
            ours.append(timed(command, ok=(0, 1, 3)))
            theirs.append(sum(timed([cli, "show", "--all", "--dir", str(version_dir(side))]) for side in (old, new)))
        ratio = statistics.median(theirs) / statistics.median(ours)
        ratios.append(ratio)
        label = f"{old.name} -> {new.name} {' '.join(options)}".strip()
        print(f"{label:72} {statistics.median(ours):9.3f}s {statistics.median(theirs):18.3f}s {ratio:6.1f}x")
    print(f"median ratio over {len(ratios)} pairs, {rounds} rounds: {statistics.median(ratios):.1f}x faster")


if __name__ == "__main__":
    main()
