"""Benchmark: cost against graph size, smsurgery against saved_model_cli and the TensorFlow route.

Builds (once, cached in --workdir) TF1 SavedModels whose `saved_model.pb` is
1 MB, 20 MB, 200 MB (about 600 k small nodes) and 1 GB (large Consts, frozen
weights), and a TF2 model with 1 GB of variables; then runs, as whole
processes in one run, and prints CPU time (user + system) and peak RSS of:

- smsurgery: `show --json`, `diff`, `request`, `scan`, `signature rename --no-verify`,
  the verified rename;
- TensorFlow: `saved_model_cli show --all`, `saved_model_cli scan`, the TF
  re-export route (TF1 load + SavedModelBuilder under the new key), and one
  TF1 load of the renamed version (the yardstick of the verified rename);

with the ratios the performance issue sets goals for. A child whose RSS
passes --max-rss-gb is killed by the benchmark and reported as such.

    python bench/scale.py                         # 1mb and 20mb (quick)
    python bench/scale.py --sizes all             # every row; needs ~8 GB free per big row
    python bench/scale.py --sizes 200mb --workdir /tmp/scale
    python bench/scale.py --sizes 200mb,1gb --only scan   # scan and saved_model_cli scan only
    python bench/scale.py --sizes lib-200mb --only scan   # the 200mb nodes in one library function
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from child_env import child_env, warm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENV = child_env(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
SIZES = {"1mb": 1 << 20, "20mb": 20 << 20, "200mb": 200 << 20, "1gb": 1 << 30, "tf2-1gb": 1 << 30}
# Not in 'all' (a row for scan: what TF2 exports look like, the nodes in a library function); --sizes names it.
EXTRA = {"lib-200mb": 200 << 20}
QUICK = ("1mb", "20mb")
BIG = ("200mb", "1gb", "tf2-1gb")

BUILD_TF2 = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    export, size = sys.argv[1], int(sys.argv[2])
    rows = size // 4 // 1024 // 4          # four variables of [rows, 1024] float32

    class Big(tf.Module):
        def __init__(self):
            self.w = [tf.Variable(tf.random.stateless_uniform([rows, 1024], seed=[i, 1]), name=f"w{i}")
                      for i in range(4)]

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.add_n([tf.reduce_sum(x * w[:1, :4], axis=1) for w in self.w])}

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
        saver = v1.train.Saver(saver_def=meta.saver_def) if meta.saver_def.filename_tensor_name else None
        builder = v1.saved_model.Builder(target)
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures, saver=saver)
        builder.save()
    """
)

TF1_LOAD = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
    """
)


# ---- building the TF1 graphs from protos (no TensorFlow), streamed to disk ----


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _nodes_of_chain(count: int) -> list[bytes]:
    """`count` serialized NodeDefs: Const + AddV2 pairs chained from Placeholder `x` to `y`."""
    from smsurgery.core import protos

    node_class = protos.message_class("tensorflow/core/framework/node_def.proto", "tensorflow.NodeDef")
    float_type = protos.dtype_numbers()["DT_FLOAT"]
    nodes = []
    x = node_class(name="x", op="Placeholder")
    x.attr["dtype"].type = float_type
    x.attr["shape"].shape.dim.add().size = -1
    x.attr["shape"].shape.dim.add().size = 4
    nodes.append(x.SerializeToString())
    previous = "x"
    for i in range(count):
        scope = f"model/block_{i:07d}/dense_layer_with_a_long_descriptive_name"
        const = node_class(name=f"{scope}/bias", op="Const")
        const.attr["dtype"].type = float_type
        const.attr["value"].tensor.dtype = float_type
        const.attr["value"].tensor.float_val.append(1e-7)
        const.attr["_output_shapes"].list.shape.add()
        add = node_class(name=f"{scope}/BiasAdd", op="AddV2", input=[previous, f"{scope}/bias"])
        add.attr["T"].type = float_type
        shape = add.attr["_output_shapes"].list.shape.add()
        shape.dim.add().size = -1
        shape.dim.add().size = 4
        nodes += [const.SerializeToString(), add.SerializeToString()]
        previous = add.name
    y = node_class(name="y", op="Identity", input=[previous])
    y.attr["T"].type = float_type
    nodes.append(y.SerializeToString())
    return nodes


def _large_consts(total: int, chunk: int = 64 << 20) -> list[bytes]:
    from smsurgery.core import protos

    node_class = protos.message_class("tensorflow/core/framework/node_def.proto", "tensorflow.NodeDef")
    float_type = protos.dtype_numbers()["DT_FLOAT"]
    nodes = []
    for i in range(max(1, total // chunk)):
        const = node_class(name=f"frozen/weights_{i}", op="Const")
        const.attr["dtype"].type = float_type
        tensor = const.attr["value"].tensor
        tensor.dtype = float_type
        tensor.tensor_shape.dim.add().size = chunk // 4
        tensor.tensor_content = os.urandom(1024) * (chunk // 1024)
        nodes.append(const.SerializeToString())
    return nodes


def _meta_graph_small_fields() -> bytes:
    from smsurgery.core import protos

    meta = protos.meta_graph_class()()
    meta.meta_info_def.tags.append("serve")
    meta.meta_info_def.tensorflow_version = "2.21.0"
    signature = meta.signature_def["serving_default"]
    signature.method_name = "tensorflow/serving/predict"
    float_type = protos.dtype_numbers()["DT_FLOAT"]
    for side, name in (("inputs", "x"), ("outputs", "y")):
        info = getattr(signature, side)[name]
        info.name, info.dtype = f"{name}:0", float_type
        info.tensor_shape.dim.add().size = -1
        info.tensor_shape.dim.add().size = 4
    return meta.SerializeToString(deterministic=True)


def build_tf1(version_dir: Path, size: int) -> None:
    """A TF1 SavedModel whose saved_model.pb is about `size` bytes, written without TensorFlow."""
    if size >= 1 << 30:
        chain, extra = _nodes_of_chain(50), _large_consts(size)
    else:
        per_pair = len(b"".join(_nodes_of_chain(10))) / 10
        chain, extra = _nodes_of_chain(max(1, int(size / per_pair))), []
    node_fields = [_field(1, node) for node in chain + extra]
    graph_length = sum(len(f) for f in node_fields)
    small = _meta_graph_small_fields()
    meta_header = _varint(2 << 3 | 2) + _varint(graph_length)
    meta_length = len(small) + len(meta_header) + graph_length
    version_dir.mkdir(parents=True, exist_ok=True)
    partial = version_dir / "saved_model.pb.partial"
    with open(partial, "wb") as handle:
        handle.write(_varint(1 << 3 | 0) + _varint(1))  # saved_model_schema_version = 1
        handle.write(_varint(2 << 3 | 2) + _varint(meta_length))
        handle.write(meta_header)
        for node_field in node_fields:
            handle.write(node_field)
        handle.write(small)  # fields may come in any order; TensorFlow's writer puts graph_def second
    partial.rename(version_dir / "saved_model.pb")


def build_library(version_dir: Path, size: int) -> None:
    """The 200mb chain as the body of library function `body`, which node `call` (the signature's) calls."""
    from smsurgery.core import protos

    per_pair = len(b"".join(_nodes_of_chain(10))) / 10
    body = b"".join(_field(3, node) for node in _nodes_of_chain(max(1, int(size / per_pair))))
    function = _field(1, _field(1, b"body")) + body  # FunctionDef {signature {name}, node_def...}
    node_class = protos.message_class("tensorflow/core/framework/node_def.proto", "tensorflow.NodeDef")
    call = node_class(name="y", op="StatefulPartitionedCall", input=["x"])
    call.attr["f"].func.name = "body"
    x = node_class(name="x", op="Placeholder")
    graph = _field(1, x.SerializeToString()) + _field(1, call.SerializeToString()) + _field(2, _field(1, function))
    meta = _field(2, graph) + _meta_graph_small_fields()
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "saved_model.pb").write_bytes(_varint(1 << 3 | 0) + _varint(1) + _field(2, meta))


def build(work: Path, name: str) -> Path:
    """The model base for row `name`, built once and cached."""
    base = work / f"scale-{name}"
    version = base / "1"
    if (version / "saved_model.pb").is_file():
        return base
    shutil.rmtree(base, ignore_errors=True)
    print(f"building {name} in {base} ...", flush=True)
    # In a child: a parent grown by building would inflate every later child's peak RSS (fork copies its
    # resident pages into the child's count before exec).
    if name == "tf2-1gb":
        measure([sys.executable, "-c", BUILD_TF2, str(version), str(SIZES[name])], limit_gb=20)
    elif name in EXTRA:
        measure([sys.executable, __file__, "--build-library", str(version), str(EXTRA[name])], limit_gb=20)
    else:
        measure([sys.executable, __file__, "--build-tf1", str(version), str(SIZES[name])], limit_gb=20)
    return base


# ---- measuring whole processes ----


@dataclass
class Usage:
    cpu: float  # seconds, user + system
    peak_mb: float
    killed: bool = False

    def cell(self) -> str:
        if self.killed:
            return f"killed past {self.peak_mb / 1024:.0f} GB"
        return f"{self.cpu:7.2f} s {self.peak_mb:7.0f} MB"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(command: list[str], *, ok: tuple[int, ...] = (0,), limit_gb: float = 12.0) -> Usage:
    """CPU and peak RSS of one child (wait4's rusage); killed when its RSS passes `limit_gb`."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    killed, done = threading.Event(), threading.Event()

    def watch() -> None:  # reads /proc only: reaping the child is wait4's job
        while not done.wait(0.1):
            if _rss_mb(proc.pid) > limit_gb * 1024:
                killed.set()
                proc.kill()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    if killed.is_set():
        return Usage(usage.ru_utime + usage.ru_stime, limit_gb * 1024, killed=True)
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(command)}\n{stderr[-2000:]}")
    return Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def saved_model_cli() -> str:
    beside = Path(sys.executable).parent / "saved_model_cli"
    found = str(beside) if beside.is_file() else shutil.which("saved_model_cli")
    if found is None:
        sys.exit("saved_model_cli not found next to this Python or on PATH (pip install tensorflow)")
    return found


def available_gb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def wait_for_memory(needed_gb: float) -> None:
    while (free := available_gb()) < needed_gb:
        print(f"  waiting: {free:.1f} GB available, this row wants {needed_gb:.0f} GB", flush=True)
        time.sleep(30)


def row(work: Path, name: str, limit_gb: float, only: str | None = None) -> dict[str, Usage]:
    base = build(work, name)
    source = base / "1"
    for leftover in [*base.glob("[2-9]"), work / "tf-route"]:
        shutil.rmtree(leftover, ignore_errors=True)
    smsurgery, cli = [sys.executable, "-m", "smsurgery"], saved_model_cli()
    rename = [*smsurgery, "signature", "rename", f"{base}@1", "serving_default", "predict"]
    os.sync()
    runs = {
        "show --json": [*smsurgery, "show", "--json", f"{base}@1"],
        "saved_model_cli show --all": [cli, "show", "--dir", str(source), "--all"],
        "scan": [*smsurgery, "scan", f"{base}@1"],
        "saved_model_cli scan": [cli, "scan", "--dir", str(source)],
        "rename --no-verify": [*rename, "--no-verify", "--version", "2"],
        "diff": [*smsurgery, "diff", f"{base}@1", f"{base}@2"],
        "request": [*smsurgery, "request", f"{base}@1"],
        "TF route (load + re-export)": [sys.executable, "-c", TF_ROUTE, str(source), str(work / "tf-route")],
        "one TF1 load of the new version": [sys.executable, "-c", TF1_LOAD, str(base / "2")],
        "verified rename": [*rename, "--version", "3"],
    }
    if only is not None:  # a command and its baseline, e.g. "scan": scan and saved_model_cli scan
        runs = {k: v for k, v in runs.items() if k.split()[0] == only or k.startswith(f"saved_model_cli {only}")}
    results = {}
    for label, command in runs.items():
        findings = "scan" in label or label == "diff"  # exit 1/3: findings or breaking changes, not failures
        results[label] = measure(command, ok=(0, 1, 3) if findings else (0,), limit_gb=limit_gb)
        print(f"  {name:8} {label:34} {results[label].cell()}", flush=True)
    for leftover in [base / "2", base / "3", work / "tf-route"]:
        shutil.rmtree(leftover, ignore_errors=True)
    return results


def ratio(baseline: Usage | None, ours: Usage | None, attribute: str = "cpu") -> str:
    if ours is None or baseline is None or ours.killed or baseline.killed:
        return "—"
    return f"{getattr(baseline, attribute) / max(getattr(ours, attribute), 1e-3):.1f}x"


def _cell(usage: Usage | None) -> str:
    return "—" if usage is None else usage.cell()


def report(table: dict[str, dict[str, Usage]]) -> None:
    print()
    print("| model | show --json | diff | request | scan | rename --no-verify | verified rename |")
    print("|---|---|---|---|---|---|---|")
    for name, r in table.items():
        labels = ("show --json", "diff", "request", "scan", "rename --no-verify", "verified rename")
        cells = [_cell(r.get(k)) for k in labels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| model | saved_model_cli show --all | saved_model_cli scan | TF route | one TF1 load (new) |")
    print("|---|---|---|---|---|")
    for name, r in table.items():
        cells = [_cell(r.get(k)) for k in
                 ("saved_model_cli show --all", "saved_model_cli scan", "TF route (load + re-export)",
                  "one TF1 load of the new version")]  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("ratios (CPU, baseline / smsurgery; goals: show, diff, request >= 30x; scan >= 5x;")
    print("rename --no-verify >= 20x; verified rename <= 1.5x of one TF1 load, CPU and memory)")
    print("| model | show | diff | request | scan | rename --no-verify | verified rename / TF1 load (CPU, RSS) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in table.items():
        load, verified = r.get("one TF1 load of the new version"), r.get("verified rename")
        over = "—"
        if load is not None and verified is not None and not verified.killed:
            over = f"{verified.cpu / load.cpu:.2f}x, {verified.peak_mb / load.peak_mb:.2f}x"
        print(
            f"| {name} | {ratio(r.get('saved_model_cli show --all'), r.get('show --json'))} "
            f"| {ratio(r.get('saved_model_cli show --all'), r.get('diff'))} "
            f"| {ratio(r.get('saved_model_cli show --all'), r.get('request'))} "
            f"| {ratio(r.get('saved_model_cli scan'), r.get('scan'))} "
            f"| {ratio(r.get('TF route (load + re-export)'), r.get('rename --no-verify'))} | {over} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(QUICK),
        help=f"comma list of {', '.join([*SIZES, *EXTRA])}, or 'all' (all but {', '.join(EXTRA)})",
    )
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "smsurgery-scale"))
    parser.add_argument("--max-rss-gb", type=float, default=12.0, help="kill a child past this RSS (default 12)")
    parser.add_argument("--min-available-gb", type=float, default=14.0, help="wait for this much before big rows")
    parser.add_argument("--only", help="one command and its baseline: show, scan (e.g. --only scan)")
    parser.add_argument("--build-tf1", nargs=2, metavar=("VERSION_DIR", "BYTES"), help=argparse.SUPPRESS)
    parser.add_argument("--build-library", nargs=2, metavar=("VERSION_DIR", "BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_tf1:
        build_tf1(Path(args.build_tf1[0]), int(args.build_tf1[1]))
        return
    if args.build_library:
        build_library(Path(args.build_library[0]), int(args.build_library[1]))
        return
    names = list(SIZES) if args.sizes == "all" else [s.strip() for s in args.sizes.split(",")]
    unknown = [n for n in names if n not in SIZES and n not in EXTRA]
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {[*SIZES, *EXTRA]}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    warm(ENV)
    table = {}
    for name in names:
        if name in BIG or name in EXTRA:
            wait_for_memory(args.min_available_gb)
        table[name] = row(work, name, args.max_rss_gb, args.only)
    report(table)


if __name__ == "__main__":
    main()
