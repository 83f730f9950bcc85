"""Presets equal keras.applications' preprocess_input; layouts, crops, BGR; fixed batches; the image record.

Every preset (mode and family) is compared on the bundled JPEG and PNG
with `keras.applications.<family>.preprocess_input` applied to the same
decoded and resized pixels (rtol 1e-5), in a graph and eagerly. A small
Keras 3 `model.export` with a BatchNorm layer whose statistics are not
trivial (so outputs depend on the pixels) serves the files through
`--preset resnet50` under both loaders with outputs equal to
preprocess_input + the original signature; a TF1 export takes the
session route with `--preset mobilenet_v2`. A channels-first TF1 model
takes `--layout nchw`; a fixed-batch model gets an unknown output batch
and answers one row per image; `warmup` works without `-i` on a b64
signature whose alias does not say "image".
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from smsurgery import read
from smsurgery.attach.image_plan import ImageSpec
from smsurgery.attach.image_presets import FAMILIES, MODE_ARITHMETIC, MODES, PRESETS
from smsurgery.attach.inputs_record import RECORD, read_record
from smsurgery.graph.image import add_image_input, decode_images, preprocess_one
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import Tolerance, compare_arrays
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURES, assert_one_line_error, run_cli, tree_digest

pytestmark = pytest.mark.slow
tf = import_tf()
v1 = tf.compat.v1
IMAGES = FIXTURES / "images"
FILES = {"jpeg": (IMAGES / "sample.jpg").read_bytes(), "png": (IMAGES / "sample.png").read_bytes()}
TOLERANCE = Tolerance(rtol=1e-5, atol=1e-6)


def keras_reference(preset: str, data: bytes, height: int, width: int) -> np.ndarray:
    """Decode, resize on 0..255 floats, then keras.applications' own preprocess_input."""
    decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
    pixels = tf.image.resize(tf.cast(decoded, tf.float32), [height, width]).numpy()[None]
    if preset in MODES:
        if preset == "none":
            return pixels
        return keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode=preset)
    return getattr(keras.applications, preset).preprocess_input(pixels.copy())


def preset_spec(preset: str, height: int = 40, width: int = 24) -> ImageSpec:
    mode = MODE_ARITHMETIC[preset if preset in MODES else FAMILIES[preset]]
    return ImageSpec(
        height=height, width=width, channels=3, dtype="DT_FLOAT", scale=mode.scale, mean=mode.mean, std=mode.std,
        channel_order=mode.channel_order, preset=preset, preset_mode=mode.name,
    )  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_preset_equals_keras_preprocess_input(preset: str, kind: str) -> None:
    spec = preset_spec(preset)
    want = keras_reference(preset, FILES[kind], spec.height, spec.width)
    graph = tf.function(lambda s: decode_images(tf, s, spec), autograph=False)
    got = graph(tf.constant([FILES[kind]])).numpy()
    eager = preprocess_one(tf, tf.constant(FILES[kind]), spec).numpy()[None]
    assert compare_arrays(want, got, TOLERANCE), compare_arrays(want, got).detail
    assert compare_arrays(want, eager, TOLERANCE)
    assert want.std() > 0.05  # not a constant image: the comparison means something


def test_bgr_crop_and_resize_shorter_match_eager_reference() -> None:
    data = FILES["jpeg"]
    image = tf.image.convert_image_dtype(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
    spec = ImageSpec(height=20, width=20, channels=3, dtype="DT_FLOAT", scale=(-1.0, 1.0), channel_order="bgr",
                     crop=0.5)  # fmt: skip
    cropped = tf.image.central_crop(image, 0.5)
    want = (tf.image.resize(cropped, [20, 20]).numpy() * 2 - 1)[..., ::-1]
    assert compare_arrays(want, preprocess_one(tf, tf.constant(data), spec).numpy(), TOLERANCE)
    h, w = image.shape[:2]
    spec = ImageSpec(height=16, width=16, channels=3, dtype="DT_FLOAT", resize_shorter=18)
    short = (18, w * 18 // h) if h <= w else (h * 18 // w, 18)
    resized = tf.image.resize(image, short).numpy()
    top, left = (short[0] - 16) // 2, (short[1] - 16) // 2
    want = resized[top : top + 16, left : left + 16]
    graph = tf.function(lambda s: decode_images(tf, s, spec), autograph=False)
    assert compare_arrays(want[None], graph(tf.constant([data])).numpy(), TOLERANCE)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def keras_classifier(path: Path, size: int = 32) -> None:
    """Conv + BatchNorm (moving statistics far from 0/1) + pooling + dense; Keras 3 model.export."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    norm = keras.layers.BatchNormalization()
    x = norm(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    gamma, beta = norm.get_weights()[:2]
    norm.set_weights([gamma * 1.5, beta + 0.2, rng.normal(0, 20, 4).astype("float32"), rng.uniform(50, 900, 4)])
    model.export(str(path / "1"), format="tf_saved_model", verbose=False)


def tf1_model(path: Path, shape: list[int | None]) -> None:
    """A TF1 export: per-channel weighted sums of the image (channel axis wherever `shape` puts 3)."""
    graph = tf.Graph()
    axis = shape.index(3)
    reduce = [a for a in range(1, 4) if a != axis]
    with graph.as_default(), v1.Session(graph=graph) as session:
        x = v1.placeholder(tf.float32, shape, name="pixels")
        w = v1.get_variable("w", initializer=tf.constant([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]))
        y = tf.matmul(tf.reduce_mean(x, axis=reduce), w, name="scores")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path / "1"))
        signature = v1.saved_model.predict_signature_def({"pixels": x}, {"scores": y})
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()


@pytest.fixture(scope="module")
def keras_base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("models") / "keras_resnetish"
    keras_classifier(base)
    return base


def both_loaders(version: Path, key: str, feeds: dict) -> list[dict]:
    with load_session(version, ("serve",)) as session:
        tf1 = session.run(key, feeds)
    return [tf1, run_tf2(load_tf2(version), key, feeds)]


def test_keras_export_serves_jpeg_and_png_through_preset_resnet50(keras_base: Path, tmp_path: Path) -> None:
    base = tmp_path / "model"
    base.mkdir()
    (base / "1").symlink_to(keras_base / "1")
    source = tree_digest(keras_base / "1")
    report = add_image_input(base, "serving_default", preset="resnet50", target=PublishTarget(base=tmp_path / "out"))
    assert report.to_json()["preset_mode"] == "caffe" and report.verification["rtol"] == 1e-5
    new = Path(report.path)
    files = np.array([FILES["jpeg"], FILES["png"]], dtype=object)
    reference = np.concatenate([keras_reference("resnet50", FILES[k], 32, 32) for k in ("jpeg", "png")])
    with load_session(keras_base / "1", ("serve",)) as old:
        want = old.run("serving_default", {"pixels": reference})["output_0"]
    assert np.abs(want).max() > 1 and np.abs(want[0] - want[1]).max() > 1e-3  # outputs depend on the image
    for got in both_loaders(new, "serving_b64", {"pixels_bytes": files}):
        assert compare_arrays(want, got["output_0"], TOLERANCE), compare_arrays(want, got["output_0"]).detail
    assert tree_digest(keras_base / "1") == source
    assert read_record(new) == {"serving_b64": ["pixels_bytes"]}


def test_tf1_export_takes_a_preset_on_the_session_route(tmp_path: Path) -> None:
    base = tmp_path / "tf1"
    tf1_model(base, [None, 24, 24, 3])
    report = add_image_input(base, preset="mobilenet_v2")
    assert report.route == "session"
    files = np.array([FILES["png"], FILES["jpeg"]], dtype=object)
    reference = np.concatenate([keras_reference("mobilenet_v2", FILES[k], 24, 24) for k in ("png", "jpeg")])
    with load_session(base / "1", ("serve",)) as old:
        want = old.run("serving_default", {"pixels": reference})["scores"]
    for got in both_loaders(base / "2", "serving_b64", {"pixels_bytes": files}):
        assert compare_arrays(want, got["scores"], TOLERANCE)


def test_channels_first_model_takes_layout_nchw(tmp_path: Path) -> None:
    base = tmp_path / "nchw"
    tf1_model(base, [None, 3, 20, 28])
    result = run_cli("image-input", base, "--layout", "nchw", "--json")
    assert result.code == 0, result.stderr
    assert (json.loads(result.stdout)["height"], json.loads(result.stdout)["width"]) == (20, 28)
    spec = ImageSpec(height=20, width=28, channels=3, dtype="DT_FLOAT")
    nhwc = tf.function(lambda s: decode_images(tf, s, spec), autograph=False)(tf.constant([FILES["jpeg"]]))
    with load_session(base / "1", ("serve",)) as old:
        want = old.run("serving_default", {"pixels": np.transpose(nhwc.numpy(), [0, 3, 1, 2])})["scores"]
    for got in both_loaders(base / "2", "serving_b64", {"pixels_bytes": np.array([FILES["jpeg"]], object)}):
        assert compare_arrays(want, got["scores"], TOLERANCE)


@pytest.mark.parametrize("route", ["session", "function"])
def test_fixed_batch_model_declares_unknown_output_batch(tmp_path: Path, route: str) -> None:
    base = tmp_path / "fixed"
    if route == "session":
        tf1_model(base, [1, 16, 16, 3])
    else:
        module = tf.Module()
        module.w = tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        module.f = tf.function(
            lambda pixels: {"scores": tf.matmul(tf.reduce_mean(pixels, axis=[1, 2]), module.w)},
            input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="pixels")],
        )
        tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.f})
    add_image_input(base)
    view = read(base / "2").meta_graph().signature("serving_b64")
    assert view.output("scores").shape == (-1, 2)
    files = np.array([FILES["jpeg"], FILES["png"]], dtype=object)
    for got in both_loaders(base / "2", "serving_b64", {"pixels_bytes": files}):
        assert got["scores"].shape == (2, 2)


def test_warmup_on_a_fresh_b64_signature_needs_no_input(tmp_path: Path) -> None:
    base = tmp_path / "plain"
    tf1_model(base, [None, 16, 16, 3])
    assert run_cli("image-input", base, "--input-name", "keras_tensor_156").code == 0
    assert json.loads((base / "2" / RECORD).read_text())["image_inputs"] == {"serving_b64": ["keras_tensor_156"]}
    result = run_cli("warmup", base / "2", "-s", "serving_b64", "--json")
    assert result.code == 0, result.stderr
    assert read_record(base / "3") == {"serving_b64": ["keras_tensor_156"]}  # carried over
    result = run_cli("request", base / "3", "-s", "serving_b64")
    assert result.code == 0 and '"b64"' in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--preset", "resnet50", "--scale", "-1,1"), ("--preset resnet50 (mode caffe) disagrees with --scale",)),
        (("--preset", "vgg16", "--mean", "1,2,3"), ("disagrees with --mean", "103.939")),
        (("--preset", "densenet", "--channel-order", "bgr"), ("disagrees with --channel-order bgr",)),
        (("--preset", "resnet9000"), ("unknown preset 'resnet9000'", "families:")),
        (("--crop", "central:0"), ("--crop 'central:0'", "(0, 1]")),
        (("--crop", "central:1.5"), ("(0, 1]",)),
        (("--crop", "corner:0.5"), ("central:FRACTION",)),
        (("--layout", "nchw"), ("--layout nchw", "has 64 on its channel axis")),
        (("--layout", "nhcw"), ("unknown layout 'nhcw'",)),
        (("--resize-shorter", "32"), ("--resize-shorter 32 is smaller than the input size 64x64",)),
        (("--channel-order", "grb"), ("unknown channel order 'grb'",)),
    ],
)
def test_bad_preset_and_layout_options_exit_2_and_write_nothing(model_copy, args, words) -> None:
    base = model_copy("keras_image", "bad-" + "-".join(a.strip("-").replace(":", "") for a in args))
    before = tree_digest(base)
    assert_one_line_error(run_cli("image-input", base, *args), *words)
    assert tree_digest(base) == before
