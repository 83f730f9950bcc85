"""Benchmark: `smsurgery scan --json` against `saved_model_cli scan`, whole processes.

Builds a TF1-style SavedModel of the requested size from protos (no
TensorFlow needed to build it): blocks of Const/MatMul/BiasAdd/Relu nodes
with a small weight each, a serving signature on the last block, a saver
(SaveV2/RestoreV2 behind `saver_def`) and one WriteFile reached by nothing,
so both tools have something to find. Then runs, alternating, `python -m
smsurgery scan --json` (from this checkout, or --repo) and `saved_model_cli
scan --dir D --tag_set serve`, and prints CPU time (user+sys) and peak RSS of
each process, and the ratios (baseline / smsurgery).

    python bench/scan.py                  # ~20 MB graph, 3 rounds
    python bench/scan.py --size 200       # ~200 MB, ~600k nodes
    python bench/scan.py --repo /work/main --size 200   # another checkout's scan, same model
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
BLOCK_NODES = 4  # Const, MatMul, BiasAdd, Relu
BLOCK_BYTES = 1_330  # serialized bytes per block, measured (~330 per node, as in the 200 MB graph), rounded up


def build_model(folder: Path, megabytes: int) -> int:
    """Write `folder/saved_model.pb` of about `megabytes` MB; returns its node count."""
    sys.path.insert(0, str(REPO))
    from smsurgery.core import protos

    saved_model = protos.saved_model_class()()
    meta = saved_model.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    graph = meta.graph_def
    float_t, string_t = 1, 7
    x = graph.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = float_t
    previous = "x"
    for block in range(megabytes * 1_000_000 // BLOCK_BYTES):
        prefix = f"model/block_{block}/dense"
        weight = graph.node.add(name=f"{prefix}/kernel", op="Const", device="/device:CPU:0")
        weight.attr["dtype"].type = float_t
        tensor = weight.attr["value"].tensor
        tensor.dtype = float_t
        tensor.tensor_shape.dim.add(size=12)
        tensor.tensor_shape.dim.add(size=16)
        tensor.tensor_content = bytes(range(256)) * 3
        for op, inputs in (("MatMul", [previous, weight.name]), ("BiasAdd", None), ("Relu", None)):
            node = graph.node.add(name=f"{prefix}/{op}", op=op, device="/device:CPU:0")
            node.input.extend(inputs or [previous])
            node.attr["T"].type = float_t
            shape = node.attr["_output_shapes"].list.shape.add()
            shape.dim.add(size=-1)
            shape.dim.add(size=16)
            previous = node.name
    # A saver, as every TF1 export with variables has, and one stray risky op.
    prefix = graph.node.add(name="save/filename", op="Placeholder")
    prefix.attr["dtype"].type = string_t
    graph.node.add(name="save/SaveV2", op="SaveV2", input=["save/filename"])
    graph.node.add(name="save/RestoreV2", op="RestoreV2", input=["save/filename"])
    graph.node.add(name="save/restore_all", op="NoOp", input=["^save/RestoreV2"])
    graph.node.add(name="save/control_dependency", op="Identity", input=["save/filename", "^save/SaveV2"])
    graph.node.add(name="stray_write", op="WriteFile", input=["save/filename", "save/filename"])
    meta.saver_def.filename_tensor_name = "save/filename:0"
    meta.saver_def.save_tensor_name = "save/control_dependency:0"
    meta.saver_def.restore_op_name = "save/restore_all"
    signature = meta.signature_def["serving_default"]
    signature.method_name = "tensorflow/serving/predict"
    signature.inputs["x"].name = "x:0"
    signature.outputs["y"].name = f"{previous}:0"
    for info in (signature.inputs["x"], signature.outputs["y"]):
        info.dtype = float_t
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(saved_model.SerializeToString(deterministic=True))
    return len(graph.node)


def measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of one whole process, from its own rusage."""
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=sink, stderr=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        stderr = proc.stderr.read() if proc.stderr else b""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):  # scan exits 3 when it finds something, as it should here
        raise SystemExit(f"failed ({code}): {' '.join(command)}\n{stderr.decode()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def saved_model_cli() -> str:
    beside = Path(sys.executable).parent / "saved_model_cli"
    found = str(beside) if beside.is_file() else shutil.which("saved_model_cli")
    if found is None:
        sys.exit("saved_model_cli not found next to this Python or on PATH (pip install tensorflow)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20, help="graph size in MB (at most 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout whose smsurgery to run")
    args = parser.parse_args()
    if not 1 <= args.size <= 200:
        sys.exit("--size must be 1..200 (MB)")
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        model = Path(tmp) / "model" / "1"
        nodes = build_model(model, args.size)
        size = (model / "saved_model.pb").stat().st_size / 1e6
        print(f"model: {size:.0f} MB saved_model.pb, {nodes} nodes; smsurgery from {args.repo}")
        ours_cmd = [sys.executable, "-m", "smsurgery", "scan", "--json", str(model)]
        theirs_cmd = [saved_model_cli(), "scan", "--dir", str(model), "--tag_set", "serve"]
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(measured(ours_cmd, args.repo))
            theirs.append(measured(theirs_cmd, Path(tmp)))
    cpu_ours, rss_ours = (statistics.median(v) for v in zip(*ours, strict=True))
    cpu_theirs, rss_theirs = (statistics.median(v) for v in zip(*theirs, strict=True))
    print(f"{'':22} {'CPU s':>8} {'peak RSS MB':>12}")
    print(f"{'smsurgery scan':22} {cpu_ours:8.2f} {rss_ours:12.0f}")
    print(f"{'saved_model_cli scan':22} {cpu_theirs:8.2f} {rss_theirs:12.0f}")
    print(
        f"ratio (saved_model_cli / smsurgery), median of {args.rounds}: "
        f"CPU {cpu_theirs / cpu_ours:.2f}x, peak RSS {rss_theirs / rss_ours:.2f}x"
    )


if __name__ == "__main__":
    main()
