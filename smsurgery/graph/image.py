"""Accept JPEG/PNG/GIF/BMP bytes in front of an image input, so clients can send `{"b64": ...}`.

TensorFlow Serving base64-decodes every `{"b64": ...}` value of a DT_STRING
input before the graph runs, so the graph receives the image file itself and
must decode the image, not the base64 (decoding twice is the classic
mistake; `base64_in_graph` is only for clients that send web-safe base64
text as a plain string). Per image, on the CPU (string tensors inside a
mapped loop fail on GPU serving): decode with the model's channel count and
`expand_animations=False` (GIF: first frame), `convert_image_dtype` to [0, 1]
floats *before* resizing (the other order gives values up to 255), resize
to the model's H and W, scale to the model's range and dtype. The decode runs
in `tf.map_fn` with a declared `[H, W, C]` output signature, so images of
different sizes share a batch and the model sees a static shape.

`ImagePreprocessor` is this decoder as a preprocessor of the attach
interface (`graph.attach`), which builds it into TF1 exports (session
route) and TF2 exports (function route) and checks the result against the
same decoding done eagerly; `image_plan` settles every choice without
TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.attach.image_plan import ImagePlan, ImageSpec, plan_image_input
from smsurgery.attach.image_presets import MODE_ARITHMETIC
from smsurgery.graph.attach import AttachPlan, publish_attachment
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget

SCHEMA = "smsurgery.image-input/1"
_PNG = b"\x89PNG\r\n\x1a\n"

__all__ = [
    "SCHEMA",
    "ImageInputReport",
    "ImagePlan",
    "ImagePreprocessor",
    "ImageSpec",
    "add_image_input",
    "decode_images",
    "plan_image_input",
    "preprocess_one",
]


# --------------------------------------------------------------------------
# The decoding subgraph (graph mode, tf.function, or eager)
# --------------------------------------------------------------------------


def _decode(tf: Any, data: Any, channels: int) -> Any:
    """uint8 [h, w, channels] from one image file, whatever its format.

    `decode_image(channels=C)` alone refuses some pairs (JPEG and GIF have no
    alpha; GIF and BMP no grayscale): those decode as RGB and are converted.
    """

    def native(count: int) -> Any:
        return tf.io.decode_image(data, channels=count, expand_animations=False)

    if channels == 3:
        return native(3)
    if channels == 1:
        direct = tf.logical_or(tf.io.is_jpeg(data), tf.equal(tf.strings.substr(data, 0, 8), _PNG))
        return tf.cond(direct, lambda: native(1), lambda: tf.image.rgb_to_grayscale(native(3)))
    is_png = tf.equal(tf.strings.substr(data, 0, 8), _PNG)
    direct = tf.logical_or(is_png, tf.equal(tf.strings.substr(data, 0, 2), b"BM"))

    def opaque() -> Any:
        rgb = native(3)
        return tf.concat([rgb, tf.fill(tf.concat([tf.shape(rgb)[:2], [1]], 0), tf.constant(255, tf.uint8))], axis=2)

    return tf.cond(direct, lambda: native(4), opaque)


def resize_with_pad(tf: Any, image: Any, height: int, width: int, method: str) -> Any:
    """`tf.image.resize_with_pad`, with its sizes computed exactly.

    TensorFlow's own computes the scaled size in float32 when the image
    shape is dynamic (always, inside a graph) and in Python floats when it is
    static (eager): 77x33 into 48x40 then resizes to 47 rows in a graph and
    48 eagerly. Integer arithmetic gives the exact values of its formula:
    the limiting side fills the target, the other is floor(side * ratio),
    padding is floor((target - unfloored scaled side) / 2).
    """
    shape = tf.shape(image, out_type=tf.int64)
    h, w = shape[0], shape[1]
    target_h, target_w, zero, one = (tf.constant(v, tf.int64) for v in (height, width, 0, 1))
    width_limits = w * target_h >= h * target_w
    new_h = tf.where(width_limits, tf.maximum((h * target_w) // w, one), target_h)
    new_w = tf.where(width_limits, target_w, tf.maximum((w * target_h) // h, one))
    top = tf.where(width_limits, (target_h * w - h * target_w) // (2 * w), zero)
    left = tf.where(width_limits, zero, (target_w * h - w * target_h) // (2 * h))
    resized = tf.image.resize(image, tf.cast(tf.stack([new_h, new_w]), tf.int32), method=method)
    return tf.image.pad_to_bounding_box(resized, tf.cast(top, tf.int32), tf.cast(left, tf.int32), height, width)


def central_crop(tf: Any, image: Any, fraction: float) -> Any:
    """`tf.image.central_crop`'s formula, computed the same way in graphs and eagerly.

    TensorFlow's own uses Python floats on static shapes (eager) and float
    tensors on dynamic ones (graphs); here it is always float64 tensors:
    start = floor((side - side * fraction) / 2), size = side - 2 * start.
    """
    shape = tf.shape(image)
    sides = tf.cast(shape[:2], tf.float64)
    start = tf.cast(tf.floor((sides - sides * fraction) / 2), tf.int32)
    size = shape[:2] - 2 * start
    return tf.slice(image, tf.concat([start, [0]], 0), tf.concat([size, [-1]], 0))


def resize_shorter_then_crop(tf: Any, image: Any, shorter: int, height: int, width: int, method: str) -> Any:
    """Resize the shorter side to `shorter` (the other: floor(side * shorter / short side)), center-crop H x W."""
    shape = tf.shape(image, out_type=tf.int64)
    h, w, target = shape[0], shape[1], tf.constant(shorter, tf.int64)
    tall = h >= w
    new_h = tf.where(tall, tf.maximum(target, (h * target) // w), target)
    new_w = tf.where(tall, target, tf.maximum(target, (w * target) // h))
    resized = tf.image.resize(image, tf.cast(tf.stack([new_h, new_w]), tf.int32), method=method)
    top = tf.cast((new_h - height) // 2, tf.int32)
    left = tf.cast((new_w - width) // 2, tf.int32)
    return tf.image.crop_to_bounding_box(resized, top, left, height, width)


def _resized(tf: Any, image: Any, spec: ImageSpec) -> Any:
    if spec.crop is not None and spec.crop < 1.0:
        image = central_crop(tf, image, spec.crop)
    if spec.resize_shorter is not None:
        return resize_shorter_then_crop(tf, image, spec.resize_shorter, spec.height, spec.width, spec.resize)
    if spec.preserve_aspect_ratio:
        return resize_with_pad(tf, image, spec.height, spec.width, spec.resize)
    return tf.image.resize(image, [spec.height, spec.width], method=spec.resize)


def keras_preprocess(tf: Any, pixels: Any, mode: str) -> Any:
    """`keras.applications` `preprocess_input` on float32 pixels 0..255, channels last (see image_presets)."""
    arithmetic = MODE_ARITHMETIC[mode]
    if mode == "tf":
        return pixels / 127.5 - 1.0
    if mode == "torch":
        pixels = pixels / 255.0
    if arithmetic.channel_order == "bgr":
        pixels = tf.reverse(pixels, axis=[-1])
    if arithmetic.mean is not None:
        pixels = pixels - tf.constant(arithmetic.mean, tf.float32)
    if arithmetic.std is not None:
        pixels = pixels / tf.constant(arithmetic.std, tf.float32)
    return pixels


def _cast(tf: Any, image: Any, spec: ImageSpec) -> Any:
    dtype = tf.as_dtype(spec.tf_dtype)
    if dtype.is_integer:
        image = tf.saturate_cast(tf.round(image), dtype)
    elif dtype != tf.float32:
        image = tf.cast(image, dtype)
    image.set_shape([spec.height, spec.width, spec.channels])
    return image


def preprocess_one(tf: Any, data: Any, spec: ImageSpec) -> Any:
    """One image file (scalar string) -> [H, W, C] of the model's dtype and range."""
    image = _decode(tf, data, spec.channels)
    if spec.preset_mode is not None:  # keras arithmetic on 0..255 floats, resized as preprocess_input's users do
        image = _resized(tf, tf.cast(image, tf.float32), spec)
        return _cast(tf, keras_preprocess(tf, image, spec.preset_mode), spec)
    image = tf.image.convert_image_dtype(image, tf.float32)  # [0, 1]; must come before resize
    image = _resized(tf, image, spec)
    low, high = spec.scale
    if (low, high) != (0.0, 1.0):
        image = image * (high - low) + low
    if spec.channel_order == "bgr":
        image = tf.reverse(image, axis=[-1])
    if spec.mean is not None:
        image = image - tf.constant(spec.mean, tf.float32)
    if spec.std is not None:
        image = image / tf.constant(spec.std, tf.float32)
    return _cast(tf, image, spec)


def decode_images(tf: Any, strings: Any, spec: ImageSpec) -> Any:
    """[N] image files -> [N, H, W, C] (or [N, C, H, W] for layout nchw), every op on the CPU."""
    with tf.device("/CPU:0"):
        if spec.base64_in_graph:
            strings = tf.io.decode_base64(strings)
        # do_not_convert: map_fn would run autograph on the body (~1.5 s) for nothing; it uses tf.cond itself.
        images = tf.map_fn(
            tf.autograph.experimental.do_not_convert(lambda data: preprocess_one(tf, data, spec)),
            strings,
            fn_output_signature=tf.TensorSpec([spec.height, spec.width, spec.channels], tf.as_dtype(spec.tf_dtype)),
            name="decode_images",
        )
        return tf.transpose(images, [0, 3, 1, 2]) if spec.layout == "nchw" else images


def sample_jpeg(tf: Any, height: int, width: int, channels: int = 3, seed: int = 0) -> bytes:
    """A deterministic JPEG (smooth gradients plus noise, so resizing has work to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), (x + y) / max(height + width - 2, 1)], axis=2)
    pixels = np.clip(base * 220 + rng.uniform(0, 35, size=base.shape), 0, 255).astype(np.uint8)
    if channels == 1:
        pixels = pixels[..., :1]
    return bytes(tf.io.encode_jpeg(pixels, quality=90).numpy())


@dataclass(frozen=True)
class ImagePreprocessor:
    """Image files in `alias` ([N] strings) -> the batch for the model input `feeds`."""

    feeds: str
    alias: str
    spec: ImageSpec

    @property
    def replaces(self) -> tuple[str, ...]:
        return (self.feeds,)

    @property
    def new_inputs(self) -> dict[str, tuple[str, tuple[int | None, ...]]]:
        return {self.alias: ("string", (None,))}

    @property
    def image_inputs(self) -> tuple[str, ...]:
        """The input takes image files, unless it takes base64 text of them (not what clients send as b64)."""
        return () if self.spec.base64_in_graph else (self.alias,)

    def __call__(self, tf: Any, inputs: Mapping[str, Any]) -> Any:
        return {self.feeds: decode_images(tf, inputs[self.alias], self.spec)}

    def sample(self, tf: Any) -> dict[str, np.ndarray]:
        """One JPEG whose size differs from the model's in both directions."""
        spec = self.spec
        jpeg = sample_jpeg(tf, spec.height * 3 // 2 + 5, spec.width * 2 // 3 + 7, spec.channels)
        feed = tf.io.encode_base64(jpeg).numpy() if spec.base64_in_graph else jpeg
        return {self.alias: np.array([feed], dtype=object)}


def attach_plan(plan: ImagePlan) -> AttachPlan:
    """The image plan as an attachment: its decoder in front of the image input."""
    return AttachPlan(
        model=plan.model,
        meta=plan.meta,
        signature=plan.signature,
        target=plan.target,
        keep_original_as=plan.keep_original_as,
        replace=plan.replace,
        base=plan.base,
        route=plan.route,
        pre=ImagePreprocessor(feeds=plan.image.alias, alias=plan.new_alias, spec=plan.spec),
        any_batch=True,
        drop_extra=plan.drop_extra,
    )


# --------------------------------------------------------------------------
# The operation
# --------------------------------------------------------------------------


@dataclass
class ImageInputReport:
    """What `add_image_input` did; `to_json()` is the `image-input --json` schema."""

    source: str
    base: str
    version: int
    path: str
    route: str
    signature: str
    target: str
    kept_original_as: str | None
    replaced: bool
    input: str
    new_input: str
    other_inputs: list[str]
    outputs: list[str]
    spec: ImageSpec
    signatures: list[str]
    dropped_files: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        spec = data.pop("spec")
        spec["scale"] = list(spec["scale"])
        for key in ("mean", "std"):
            spec[key] = list(spec[key]) if spec[key] is not None else None
        return {"schema": SCHEMA, **data, **spec}


def add_image_input(
    path: str | Path,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    target: PublishTarget = DEFAULT_TARGET,
    **options: Any,
) -> ImageInputReport:
    """Publish a new version whose signature takes image files as `<alias>_bytes`.

    `options` are those of `plan_image_input` (input_alias, input_name,
    size, channels, new_key, keep_original_as, replace, route) and its
    decoding options (resize, scale, mean, std, preset, ...); `target` is
    where and how the version is published, with the tolerance of the check
    (defaults: `smsurgery.publishing.comparison`). Every bad input is
    refused before TensorFlow starts and before anything is written.
    """
    started = time.perf_counter()
    plan = plan_image_input(path, signature, tags=tags, out_base=target.base, **options)
    attachment = attach_plan(plan)
    result = publish_attachment(attachment, target, started)
    return ImageInputReport(
        **result.report_fields(attachment),
        kept_original_as=plan.keep_original_as,
        replaced=plan.replace,
        input=plan.image.alias,
        new_input=plan.new_alias,
        other_inputs=[t.alias for t in plan.signature.inputs if t.alias != plan.image.alias],
        outputs=[t.alias for t in plan.signature.outputs],
        spec=plan.spec,
        dropped_files=list(plan.drop_extra),
    )
