"""Benchmark `image-input` on the Keras image fixture.

Prints, measured in the same run:
- the surgery itself (`python -m smsurgery image-input ... --json` in a child
  process), without and with the check before publishing: wall time and
  peak RSS of the process, and the library call's own time from the report
  (TensorFlow is imported inside it, lazily);
- latency per batch (1 and 32 JPEGs of mixed sizes) of the new `serving_b64`
  signature, against the baseline a client would otherwise need: decode and
  resize the same JPEGs with TensorFlow ops (eager) and feed the original
  `serving_default` signature. Both run in one TF1 session, loaded the way
  TensorFlow Serving loads a version; the ratio is new / baseline;
- the goal figure (<= 1.10): `serving_b64` under `tf.saved_model.load`
  against one `tf.function` that decodes with `tf.io.decode_jpeg` in
  `map_fn`, resizes and calls `serving_default` of the same loaded model.

    python bench/image_input.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "models" / "keras_image"


def surgery(base: Path, *options: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "smsurgery", "image-input", str(base), "--json", *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"image-input failed: {proc.stderr.strip().splitlines()[-1:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    return {"wall": wall, "peak_mb": peak_kb / 1024, "report": json.loads(proc.stdout)}


def jpegs(tf, count: int, seed: int = 0) -> list[bytes]:
    """Photos-like JPEGs of mixed sizes (smooth content plus noise), quality 90."""
    rng = np.random.default_rng(seed)
    files = []
    for _ in range(count):
        height, width = int(rng.integers(180, 360)), int(rng.integers(240, 480))
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack([np.sin(x / 17), np.cos(y / 23), np.sin((x + y) / 31)], axis=2) * 90 + 128
        pixels = np.clip(base + rng.normal(0, 12, size=base.shape), 0, 255).astype(np.uint8)
        files.append(bytes(tf.io.encode_jpeg(pixels, quality=90).numpy()))
    return files


def paired_ms(new: Callable[[], object], baseline: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median ms of each, measured alternately so that load from other processes hits both alike."""
    for _ in range(3):
        new(), baseline()
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeats):
        for side, function in enumerate((new, baseline)):
            started = time.perf_counter()
            function()
            times[side].append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-image-input-"))
    try:
        base = work / "keras_image"
        shutil.copytree(FIXTURE, base)
        quick = surgery(base, "--no-verify", "--as", "unverified")
        done = surgery(base)
        for name, run in (("surgery --no-verify", quick), ("surgery (verified)", done)):
            print(
                f"{name}: {run['wall']:.2f} s wall, of which {run['report']['seconds']:.2f} s in add_image_input "
                f"(TensorFlow starts inside it); peak RSS {run['peak_mb']:.0f} MB"
            )
        latency(base / str(done["report"]["version"]), args.repeats)
        function_ratio(base / str(done["report"]["version"]), args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def latency(version_dir: Path, repeats: int) -> None:
    sys.path.insert(0, str(REPO))
    from smsurgery.graph.session import import_tf, load_session

    tf = import_tf()
    with load_session(version_dir, ("serve",)) as loaded:
        new = loaded.meta_graph.signature_def["serving_b64"]
        old = loaded.meta_graph.signature_def["serving_default"]
        new_in, new_out = new.inputs["image_bytes"].name, new.outputs["output_0"].name
        old_in, old_out = old.inputs["image"].name, old.outputs["output_0"].name

        def client_side(files: list[bytes]) -> np.ndarray:
            images = [
                tf.image.resize(tf.image.convert_image_dtype(tf.io.decode_jpeg(f, channels=3), tf.float32), [64, 64])
                for f in files
            ]
            return loaded.session.run(old_out, {old_in: np.stack([i.numpy() for i in images])})

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def compiled_decode(files: tf.Tensor) -> tf.Tensor:
            return tf.map_fn(
                lambda f: tf.image.resize(
                    tf.image.convert_image_dtype(tf.io.decode_jpeg(f, channels=3), tf.float32), [64, 64]
                ),
                files,
                fn_output_signature=tf.TensorSpec([64, 64, 3], tf.float32),
            )

        def client_compiled(files: np.ndarray) -> np.ndarray:
            return loaded.session.run(old_out, {old_in: compiled_decode(tf.constant(files)).numpy()})

        for batch in (1, 32):
            files = jpegs(tf, batch, seed=batch)
            feed = np.array(files, dtype=object)
            got = loaded.session.run(new_out, {new_in: feed})
            assert np.abs(got - client_side(files)).max() <= 1e-5
            new_ms, base_ms = paired_ms(
                lambda feed=feed: loaded.session.run(new_out, {new_in: feed}),
                lambda files=files: client_side(files),
                repeats,
            )
            again_ms, compiled_ms = paired_ms(
                lambda feed=feed: loaded.session.run(new_out, {new_in: feed}),
                lambda feed=feed: client_compiled(feed),
                repeats,
            )
            print(
                f"batch {batch:2d}: serving_b64 {new_ms:7.2f} ms | eager decode + serving_default {base_ms:7.2f} ms, "
                f"ratio {new_ms / base_ms:.2f} (goal <= 1.10) | tf.function decode + serving_default "
                f"{compiled_ms:7.2f} ms, ratio {again_ms / compiled_ms:.2f}"
            )


def function_ratio(version_dir: Path, repeats: int) -> None:
    """serving_b64 against a tf.function map_fn(decode_jpeg) + serving_default, both under tf.saved_model.load."""
    from smsurgery.graph.session import import_tf

    tf = import_tf()
    loaded = tf.saved_model.load(str(version_dir))
    new, old = loaded.signatures["serving_b64"], loaded.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def baseline(files: tf.Tensor) -> dict:
        def one(data: tf.Tensor) -> tf.Tensor:
            image = tf.image.convert_image_dtype(tf.io.decode_jpeg(data, channels=3), tf.float32)
            return tf.image.resize(image, [64, 64])

        images = tf.map_fn(one, files, fn_output_signature=tf.TensorSpec([64, 64, 3], tf.float32))
        return old(image=images)

    for batch in (1, 32):
        files = tf.constant(jpegs(tf, batch, seed=batch))
        got, want = new(image_bytes=files)["output_0"].numpy(), baseline(files)["output_0"].numpy()
        assert np.abs(got - want).max() <= 1e-5
        new_ms, base_ms = paired_ms(
            lambda files=files: new(image_bytes=files)["output_0"].numpy(),
            lambda files=files: baseline(files)["output_0"].numpy(),
            repeats,
        )
        print(
            f"batch {batch:2d} (tf.saved_model.load): serving_b64 {new_ms:7.2f} ms | tf.function "
            f"map_fn(decode_jpeg) + serving_default {base_ms:7.2f} ms, ratio {new_ms / base_ms:.2f} (goal <= 1.10)"
        )


if __name__ == "__main__":
    main()
