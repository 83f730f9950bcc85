"""`image-input` end to end: the new signature equals the original fed eagerly decoded images.

For every model kind (Keras export, TF1 export with a second input, TF2
export with dynamic H and W) the new version is checked under both loaders:
the new signature on JPEG and PNG files of several sizes in one batch must
equal the source's original signature fed the same files decoded and
resized by TensorFlow ops in eager mode (max abs diff <= 1e-5); every
original signature must still give the source's outputs; keys and aliases
must agree between the loaders; the source must be byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smsurgery import read
from smsurgery.graph.image import add_image_input
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from smsurgery.publishing.target import PublishTarget
from smsurgery.serving.samples import sample_inputs
from tests.conftest import tree_digest
from tests.test_image_input_formats import jpeg, png

tf = import_tf()
FILES = [jpeg(50, 70, seed=1), png(80, 40, seed=2), jpeg(64, 64, seed=3), png(13, 200, seed=4), jpeg(31, 32, seed=5)]
DECODERS = ("DecodeImage", "DecodeJpeg", "DecodePng", "DecodeGif", "DecodeBmp", "While", "StatelessWhile")


def eager_batch(files: list[bytes], height: int, width: int, pad: bool = False) -> np.ndarray:
    """The reference: decode, convert to [0, 1], resize, with TensorFlow ops in eager mode."""
    rows = []
    for data in files:
        image = tf.image.convert_image_dtype(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
        resized = tf.image.resize_with_pad(image, height, width) if pad else tf.image.resize(image, [height, width])
        rows.append(resized.numpy())
    return np.stack(rows)


def max_diff(left: dict, right: dict) -> float:
    assert set(left) == set(right), (set(left), set(right))
    return max(float(np.max(np.abs(np.asarray(left[k]) - np.asarray(right[k])))) for k in left)


def tf2_view(loaded) -> dict:
    return {
        key: (sorted(f.structured_input_signature[1]), sorted(f.structured_outputs))
        for key, f in loaded.signatures.items()
    }


def tf1_view(meta_graph) -> dict:
    return {
        key: (sorted(s.inputs), sorted(s.outputs))
        for key, s in meta_graph.signature_def.items()
        if key != "__saved_model_init_op"
    }


def check_version(
    old_dir: Path,
    new_dir: Path,
    *,
    original: str,
    new: str,
    new_feeds: dict,
    old_feeds: dict,
    moved: dict[str, str] | None = None,
) -> None:
    """Both loaders: new signature == original on eager-decoded images; originals unchanged; views agree."""
    moved = moved or {}
    meta = read(old_dir).meta_graph()
    with load_session(old_dir, ("serve",)) as old, load_session(new_dir, ("serve",)) as fresh:
        assert max_diff(fresh.run(new, new_feeds), old.run(original, old_feeds)) <= 1e-5
        for key in old.signature_keys():
            if key == new and key not in moved.values() and key not in moved:
                continue
            samples = sample_inputs(meta.signature(key), batch=3)
            assert max_diff(fresh.run(moved.get(key, key), samples), old.run(key, samples)) <= 1e-6, key
        tf1_keys = tf1_view(fresh.meta_graph)
        junk = {k: ([b"junk"] if isinstance(v[0], bytes) else v[:1]) for k, v in new_feeds.items()}
        signature = fresh.meta_graph.signature_def[new]
        with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
            fresh.session.run(
                [info.name for info in signature.outputs.values()],
                {signature.inputs[alias].name: value for alias, value in junk.items()},
            )
    old_loaded, new_loaded = load_tf2(old_dir), load_tf2(new_dir)
    assert max_diff(run_tf2(new_loaded, new, new_feeds), run_tf2(old_loaded, original, old_feeds)) <= 1e-5
    assert tf2_view(new_loaded) == tf1_keys
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        new_loaded.signatures[new](**{alias: tf.constant(value) for alias, value in junk.items()})


def decoder_devices(version_dir: Path) -> dict[str, str]:
    """op type -> device of the decoding ops, in the graph and in every function of the library."""
    graph_def = read(version_dir).meta_graph().proto.graph_def
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    found = {}
    for node in nodes:
        if node.op in DECODERS:
            found[f"{node.op} {node.name}"] = node.device
    return found


def test_keras_export_takes_bytes_under_both_loaders(model_copy) -> None:
    base = model_copy("keras_image")
    source = tree_digest(base / "1")
    report = add_image_input(base, "serving_default")
    assert (report.version, report.route, report.target) == (2, "function", "serving_b64")
    assert report.new_input == "image_bytes"
    assert report.verification["new_signature_max_abs_diff"] == {"tf1": 0.0, "tf2": 0.0}
    assert (report.verification["rtol"], report.verification["atol"]) == (1e-5, 1e-6)  # comparison's defaults
    assert tree_digest(base / "1") == source
    new_meta = read(base / "2").meta_graph()
    assert new_meta.kind == "tf2" and new_meta.signature_keys() == ["serve", "serving_b64", "serving_default"]
    assert new_meta.signature("serving_b64").input("image_bytes").dtype == "DT_STRING"
    assert new_meta.signature("serving_b64").input("image_bytes").shape == (-1,)
    check_version(
        base / "1",
        base / "2",
        original="serving_default",
        new="serving_b64",
        new_feeds={"image_bytes": np.array(FILES, dtype=object)},
        old_feeds={"image": eager_batch(FILES, 64, 64)},
    )
    assert "DecodeBase64" not in new_meta.op_histogram()
    devices = decoder_devices(base / "2")
    assert any(k.startswith("DecodeImage") for k in devices) and all("CPU" in d for d in devices.values()), devices


def test_tf1_export_with_a_second_input(model_copy) -> None:
    base = model_copy("tf1_image")
    source = tree_digest(base / "1")
    report = add_image_input(base, target=PublishTarget(verify=False))
    assert (report.route, report.other_inputs, report.outputs) == ("session", ["temperature"], ["logits", "probs"])
    assert tree_digest(base / "1") == source
    temperature = np.array([0.5, 1.0, 2.0, 3.0, 7.0], np.float32)
    check_version(
        base / "1",
        base / "2",
        original="serving_default",
        new="serving_b64",
        new_feeds={"image_bytes": np.array(FILES, dtype=object), "temperature": temperature},
        old_feeds={"image": eager_batch(FILES, 32, 32), "temperature": temperature},
    )
    meta = read(base / "2").meta_graph()
    assert meta.kind == "tf1"
    assert meta.signature("serving_b64").input("temperature").name == "temperature:0"  # passed through unchanged
    assert "DecodeBase64" not in meta.op_histogram()
    devices = decoder_devices(base / "2")
    assert any(k.startswith("DecodeImage") for k in devices) and all("CPU" in d for d in devices.values()), devices
    with load_session(base / "2", ("serve",)) as fresh:
        signature = fresh.meta_graph.signature_def["serving_b64"]
        feeds = {signature.inputs["image_bytes"].name: [b"\x89PNG broken"], signature.inputs["temperature"].name: [1.0]}
        with pytest.raises(tf.errors.InvalidArgumentError, match="PNG"):
            fresh.session.run(signature.outputs["probs"].name, feeds)


def test_dynamic_size_as_default_then_replace(model_copy) -> None:
    base = model_copy("tf2_image_dynamic")
    files = [jpeg(77, 33, seed=6), png(50, 70, seed=7), jpeg(80, 40, seed=8)]  # sizes where eager pads exactly
    report = add_image_input(base, size=(48, 40), preserve_aspect_ratio=True, new_key="serving_default")
    assert (report.target, report.kept_original_as) == ("serving_default", "serving_float")
    assert read(base / "2").meta_graph().signature_keys() == ["serving_default", "serving_float"]
    check_version(
        base / "1",
        base / "2",
        original="serving_default",
        new="serving_default",
        new_feeds={"image_bytes": np.array(files, dtype=object)},
        old_feeds={"image": eager_batch(files, 48, 40, pad=True)},
        moved={"serving_default": "serving_float"},
    )
    replaced = add_image_input(
        base / "1", size=(30, 20), resize="bilinear", replace=True, target=PublishTarget(base=base)
    )
    assert replaced.version == 3 and read(base / "3").meta_graph().signature_keys() == ["serving_default"]
    with load_session(base / "1", ("serve",)) as old, load_session(base / "3", ("serve",)) as fresh:
        got = fresh.run("serving_default", {"image_bytes": np.array(files, dtype=object)})
        assert max_diff(got, old.run("serving_default", {"image": eager_batch(files, 30, 20)})) <= 1e-5


def test_session_route_on_a_keras_export(model_copy) -> None:
    """The TF1 route also works on a TF2 graph: a second call node fed by the decoder."""
    base = model_copy("keras_image")
    report = add_image_input(base, "serve", route="session", input_name="jpeg")
    assert report.route == "session" and read(base / "2").meta_graph().kind == "tf1"
    check_version(
        base / "1",
        base / "2",
        original="serve",
        new="serving_b64",
        new_feeds={"jpeg": np.array(FILES[:3], dtype=object)},
        old_feeds={"image": eager_batch(FILES[:3], 64, 64)},
    )


def test_base64_in_graph_and_assets_extra(model_copy) -> None:
    base = model_copy("tf1_image")
    extra = base / "1" / "assets.extra"
    extra.mkdir()
    (extra / "tf_serving_warmup_requests").write_bytes(b"float requests for serving_default")
    (extra / "saved_model_config.pb").write_bytes(b"")
    report = add_image_input(base, replace=True, base64_in_graph=True, target=PublishTarget(verify=False))
    assert report.dropped_files == ["tf_serving_warmup_requests"]  # its float requests would now fail at load
    assert sorted(p.name for p in (base / "2" / "assets.extra").iterdir()) == ["saved_model_config.pb"]
    assert read(base / "2").meta_graph().op_histogram().get("DecodeBase64") == 1
    text = [tf.io.encode_base64(data).numpy() for data in FILES[:2]]  # web-safe alphabet
    temperature = np.ones(2, np.float32)
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as fresh:
        got = fresh.run("serving_default", {"image_bytes": np.array(text, dtype=object), "temperature": temperature})
        want = old.run("serving_default", {"image": eager_batch(FILES[:2], 32, 32), "temperature": temperature})
        assert max_diff(got, want) <= 1e-5
    kept = add_image_input(base / "1", target=PublishTarget(base=base, verify=False))
    assert sorted(p.name for p in (base / str(kept.version) / "assets.extra").iterdir()) == [
        "saved_model_config.pb",
        "smsurgery_inputs.json",  # the record of image inputs (not written for base64 text inputs)
        "tf_serving_warmup_requests",
    ]
