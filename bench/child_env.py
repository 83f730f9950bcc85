"""Benchmark children run as an installed package would: with compiled bytecode.

Some machines (this one) set PYTHONDONTWRITEBYTECODE=1. Then every child
`python -m smsurgery` compiles smsurgery's ~150 modules again, about 0.1 s
of CPU, half of a proto-only command, while saved_model_cli's TensorFlow was
compiled when pip installed it. The children share one bytecode cache
outside the tree (PYTHONPYCACHEPREFIX), filled by `warm` before any timing.
SMSURGERY_BENCH_NO_CACHE=1 measures the environment as it is instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "smsurgery-bench-pycache"
_COMPILE = "import compileall, os, smsurgery; compileall.compile_dir(os.path.dirname(smsurgery.__file__), quiet=1)"


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    if os.environ.get("SMSURGERY_BENCH_NO_CACHE"):
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(CACHE)
    return env


def warm(env: dict[str, str]) -> None:
    """Compile the smsurgery the children import into the cache (a no-op without one)."""
    if "PYTHONPYCACHEPREFIX" in env:
        subprocess.run([sys.executable, "-c", _COMPILE], env=env, check=True)
