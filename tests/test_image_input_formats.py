"""The decoding subgraph on its own: formats, channel counts, value ranges, the traps.

Also home of the image-file makers the other image-input tests use: JPEG
and PNG come from TensorFlow's encoders; GIF and BMP (which TensorFlow
decodes but cannot encode) from the small writers below.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from smsurgery.attach.image_plan import ImageSpec
from smsurgery.graph.image import decode_images, preprocess_one, resize_with_pad
from smsurgery.graph.session import import_tf

tf = import_tf()


def pixels(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Gradients plus noise: resizing has something to average, JPEG something to lose."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width, 1), y / max(height, 1), (x * y) / max(width * height, 1)] * 2, axis=2)
    noisy = base[..., :channels] * 200 + rng.uniform(0, 55, size=(height, width, channels))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(height: int, width: int, seed: int = 0) -> bytes:
    return bytes(tf.io.encode_jpeg(pixels(height, width, 3, seed), quality=90).numpy())


def png(height: int, width: int, channels: int = 3, seed: int = 0) -> bytes:
    return bytes(tf.io.encode_png(pixels(height, width, channels, seed)).numpy())


def bmp(rgb: np.ndarray) -> bytes:
    """24-bit uncompressed BMP (rows bottom-up, BGR, padded to 4 bytes)."""
    height, width, _ = rgb.shape
    row = (width * 3 + 3) & ~3
    data = b"".join(rgb[y, :, ::-1].tobytes() + b"\0" * (row - width * 3) for y in range(height - 1, -1, -1))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(data), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    return header + info + data


def _lzw_9bit(indices: bytes) -> bytes:
    """GIF LZW without compression: a clear code every 254 pixels keeps every code 9 bits wide."""
    codes: list[int] = []
    for position, value in enumerate(indices):
        if position % 254 == 0:
            codes.append(256)
        codes.append(value)
    codes.append(257)
    out, bits, count = bytearray(), 0, 0
    for code in codes:
        bits |= code << count
        count += 9
        while count >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            count -= 8
    if count:
        out.append(bits & 0xFF)
    return bytes(out)


def gif(frames: list[np.ndarray]) -> bytes:
    """An (animated) GIF; colours must be multiples of 51 (a 6x6x6 palette)."""
    height, width, _ = frames[0].shape
    levels = [0, 51, 102, 153, 204, 255]
    palette = bytes(v for r in levels for g in levels for b in levels for v in (r, g, b)) + b"\0" * 120
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0) + palette)
    if len(frames) > 1:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for frame in frames:
        steps = frame.astype(np.int32) // 51
        indices = (steps[..., 0] * 36 + steps[..., 1] * 6 + steps[..., 2]).astype(np.uint8).tobytes()
        out += b"\x21\xf9\x04\x00\x00\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08"
        data = _lzw_9bit(indices)
        for start in range(0, len(data), 255):
            out += bytes([len(data[start : start + 255])]) + data[start : start + 255]
        out += b"\x00"
    return bytes(out + b"\x3b")


def palette_frame(height: int, width: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).integers(0, 6, size=(height, width, 3)) * 51).astype(np.uint8)


def spec(**changes: object) -> ImageSpec:
    values: dict = {"height": 16, "width": 12, "channels": 3, "dtype": "DT_FLOAT"}
    values.update(changes)
    return ImageSpec(**values)


def run_graph(strings: list[bytes], image_spec: ImageSpec) -> np.ndarray:
    """decode_images inside a tf.function, the way both routes build it."""
    function = tf.function(lambda s: decode_images(tf, s, image_spec))
    return function(tf.constant(strings)).numpy()


def test_every_format_decodes_in_one_batch_of_mixed_sizes() -> None:
    frame = palette_frame(9, 14, seed=1)
    files = [jpeg(40, 30), png(7, 50), png(20, 20, channels=4), gif([frame, palette_frame(9, 14, seed=2)]), bmp(frame)]
    out = run_graph(files, spec())
    assert out.shape == (5, 16, 12, 3) and out.dtype == np.float32
    for row, data in zip(out, files, strict=True):
        expected = tf.image.resize(
            tf.image.convert_image_dtype(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32),
            [16, 12],
        ).numpy()
        assert np.abs(row - expected).max() <= 1e-6
    first_frame = tf.image.resize(tf.image.convert_image_dtype(frame, tf.float32), [16, 12]).numpy()
    assert np.abs(out[3] - first_frame).max() <= 1e-6  # the GIF's first frame, not the second
    assert np.abs(out[4] - first_frame).max() <= 1e-6  # the BMP holds the same pixels


def test_grayscale_and_alpha_models_accept_every_format() -> None:
    """decode_image(channels=1) refuses GIF and BMP, (channels=4) refuses JPEG and GIF: we convert instead."""
    frame = palette_frame(8, 8, seed=3)
    files = [jpeg(8, 8), png(8, 8), gif([frame]), bmp(frame)]
    gray = run_graph(files, spec(height=8, width=8, channels=1))
    assert gray.shape == (4, 8, 8, 1)
    expected_gif = tf.image.convert_image_dtype(tf.image.rgb_to_grayscale(frame), tf.float32).numpy()
    assert np.abs(gray[2] - expected_gif).max() <= 1e-6 and np.abs(gray[3] - expected_gif).max() <= 1e-6
    rgba = run_graph(files, spec(height=8, width=8, channels=4))
    assert rgba.shape == (4, 8, 8, 4)
    assert np.all(rgba[0, ..., 3] == 1.0) and np.all(rgba[2, ..., 3] == 1.0)  # JPEG and GIF: opaque
    rgb_of_jpeg = tf.image.convert_image_dtype(tf.io.decode_jpeg(files[0], channels=3), tf.float32).numpy()
    assert np.abs(rgba[0, ..., :3] - rgb_of_jpeg).max() <= 1e-6


def test_scale_mean_std_and_integer_dtypes() -> None:
    data = png(6, 6)
    unit = run_graph([data], spec(height=6, width=6))[0]  # no resize needed: exact pixels / 255
    assert np.abs(unit - pixels(6, 6) / 255.0).max() <= 1e-6
    signed = run_graph([data], spec(height=6, width=6, scale=(-1.0, 1.0)))[0]
    assert np.abs(signed - (unit * 2 - 1)).max() <= 1e-6
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    normalized = run_graph([data], spec(height=6, width=6, mean=mean, std=std))[0]
    assert np.abs(normalized - (unit - np.array(mean)) / np.array(std)).max() <= 1e-5
    raw = run_graph([data], spec(height=6, width=6, dtype="DT_UINT8", scale=(0.0, 255.0)))[0]
    assert raw.dtype == np.uint8 and np.array_equal(raw, pixels(6, 6))
    half = run_graph([data], spec(height=6, width=6, dtype="DT_HALF"))[0]
    assert half.dtype == np.float16


@pytest.mark.parametrize("size", [(77, 33), (50, 70), (80, 40), (40, 48)])
def test_preserve_aspect_ratio_pads_like_tensorflow_eager(size: tuple[int, int]) -> None:
    image = tf.image.convert_image_dtype(tf.io.decode_png(png(*size)), tf.float32)
    expected = tf.image.resize_with_pad(image, 48, 40).numpy()  # eager: sizes computed in Python floats
    graph = tf.function(lambda im: resize_with_pad(tf, im, 48, 40, "bilinear"))
    shapeless = graph.get_concrete_function(tf.TensorSpec([None, None, 3], tf.float32))
    assert np.abs(shapeless(image).numpy() - expected).max() <= 1e-6


def test_tf_resize_with_pad_is_off_by_one_in_a_graph() -> None:
    """Why resize_with_pad is ours: TensorFlow's drops a row when the shape is dynamic (float32 sizes)."""
    image = tf.image.convert_image_dtype(tf.io.decode_png(png(77, 33)), tf.float32)
    theirs = tf.function(lambda im: tf.image.resize_with_pad(im, 48, 40)).get_concrete_function(
        tf.TensorSpec([None, None, 3], tf.float32)
    )
    eager = tf.image.resize_with_pad(image, 48, 40).numpy()
    assert np.abs(theirs(image).numpy() - eager).max() > 0.1


def test_map_output_has_a_static_shape_and_runs_on_the_cpu() -> None:
    graph = tf.Graph()
    with graph.as_default():
        strings = tf.compat.v1.placeholder(tf.string, [None])
        images = decode_images(tf, strings, spec(height=20, width=10, channels=1))
    assert images.shape.as_list() == [None, 20, 10, 1]
    decoding = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile", "TensorListFromTensor")]
    assert decoding and all("CPU" in op.device for op in decoding)


def test_base64_in_graph_decodes_web_safe_text_only_when_asked() -> None:
    data = jpeg(10, 10)
    text = tf.io.encode_base64(data).numpy()  # web-safe alphabet, as tf.io.decode_base64 expects
    assert np.abs(run_graph([text], spec(base64_in_graph=True)) - run_graph([data], spec())).max() == 0.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        run_graph([text], spec())  # base64 text is not an image: the default graph must not decode it


def test_bad_bytes_are_invalid_argument_errors() -> None:
    for bad, words in ((b"not an image", "Unknown image file format"), (b"", "empty"), (jpeg(9, 9)[:60], "jpeg")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"(?i){words}"):
            run_graph([bad], spec())
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocess_one(tf, tf.constant(b"junk"), spec())
