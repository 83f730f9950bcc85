"""Check an image-input request against the model and settle every choice, without TensorFlow.

Everything a user can get wrong (no image-like input, unknown rank, a
channel count TensorFlow cannot decode to, a dynamic size without `--size`,
a signature key that is taken) is found here, from the protos alone, before
the TensorFlow runtime starts and before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smsurgery.attach.image_presets import FAMILIES, MODES, preset_mode
from smsurgery.core.errors import (
    AliasNotFound,
    InvalidEdit,
    InvalidName,
    NameCollision,
    UnsupportedModel,
    listing,
)
from smsurgery.core.model import INIT_OP_SIGNATURE, MetaGraph, SavedModelFile, SignatureView, TensorView, read
from smsurgery.publishing.new_version import target_base

# Model input dtypes we can produce, as TensorFlow names them.
TF_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_HALF": "float16",
    "DT_DOUBLE": "float64",
    "DT_BFLOAT16": "bfloat16",
    "DT_UINT8": "uint8",
    "DT_INT8": "int8",
    "DT_UINT16": "uint16",
    "DT_INT16": "int16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
}
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")
CHANNELS = (1, 3, 4)
DEFAULT_IMAGE_KEY = "serving_b64"
DEFAULT_KEEP_ORIGINAL_AS = "serving_float"
ROUTES = ("auto", "session", "function")
CHANNEL_ORDERS = ("rgb", "bgr")
DECODING_OPTIONS = (
    "resize", "preserve_aspect_ratio", "scale", "mean", "std", "base64_in_graph",
    "channel_order", "layout", "crop", "resize_shorter", "preset",
)  # fmt: skip
LAYOUTS = ("nhwc", "nchw")
WARMUP = "tf_serving_warmup_requests"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


@dataclass(frozen=True)
class ImageSpec:
    """How one image file becomes one model input row."""

    height: int
    width: int
    channels: int
    dtype: str  # the model input's dtype, e.g. DT_FLOAT
    resize: str = "bilinear"
    preserve_aspect_ratio: bool = False
    scale: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    base64_in_graph: bool = False
    channel_order: str = "rgb"  # bgr: channels reversed after scaling, before --mean/--std
    layout: str = "nhwc"  # nchw: the batch is transposed to [N, C, H, W] last
    crop: float | None = None  # central crop to this fraction of each side, before resizing
    resize_shorter: int | None = None  # resize the shorter side to this, keep aspect, center-crop to H x W
    preset: str | None = None  # a keras.applications family or mode: its preprocess_input, exactly
    preset_mode: str | None = None  # tf | torch | caffe | none

    @property
    def tf_dtype(self) -> str:
        return TF_DTYPES[self.dtype]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One decoded image as the model input takes it (without the batch)."""
        if self.layout == "nchw":
            return (self.channels, self.height, self.width)
        return (self.height, self.width, self.channels)


@dataclass(frozen=True)
class ImagePlan:
    """A checked request: which signature, which input, what to build, where to publish."""

    model: SavedModelFile
    meta: MetaGraph
    signature: SignatureView
    image: TensorView
    new_alias: str
    target: str  # the key of the signature that takes bytes
    keep_original_as: str | None  # where the original moves when `target` is its own key
    replace: bool
    spec: ImageSpec
    base: Path | str  # a URL string for a remote base
    route: str  # session | function
    drop_extra: tuple[str, ...] = ()  # assets.extra files not carried over

    @property
    def source(self) -> Path:
        return self.model.path

    @property
    def tags(self) -> tuple[str, ...]:
        return self.meta.tags


def _shape_text(tensor: TensorView) -> str:
    if tensor.shape is None:
        return "unknown rank"
    return "[" + ",".join("None" if d < 0 else str(d) for d in tensor.shape) + "]"


def _inputs_text(signature: SignatureView) -> str:
    return listing(f"{t.alias} {t.dtype} {_shape_text(t)}" for t in signature.inputs)


def _image_like(tensor: TensorView) -> bool:
    return tensor.name is not None and tensor.dtype in TF_DTYPES and tensor.shape is not None and len(tensor.shape) == 4


def choose_input(signature: SignatureView, alias: str | None) -> TensorView:
    """The image input: the one named, or the only [batch, H, W, C] numeric input."""
    where = f"signature '{signature.key}'"
    if alias is not None:
        tensor = signature.input(alias)
    else:
        candidates = [t for t in signature.inputs if _image_like(t)]
        if len(candidates) > 1:
            raise AliasNotFound(
                f"{where} has several image-like inputs: {listing(t.alias for t in candidates)}",
                hint="choose one with --input ALIAS",
            )
        unknown = [t for t in signature.inputs if t.shape is None and t.dtype in TF_DTYPES]
        if not candidates and len(unknown) == 1:
            tensor = unknown[0]
        elif not candidates:
            raise UnsupportedModel(
                f"no image-like input ([batch, height, width, channels], numeric) in {where}; "
                f"its inputs: {_inputs_text(signature)}"
            )
        else:
            tensor = candidates[0]
    if tensor.name is None:
        raise UnsupportedModel(f"input '{tensor.alias}' of {where} is a {tensor.encoding} tensor, not an image")
    if tensor.shape is None:
        raise UnsupportedModel(
            f"input '{tensor.alias}' of {where} has unknown rank; "
            "an image input needs [batch, height, width, channels]",
            hint="re-export the model with a static rank",
        )
    if len(tensor.shape) != 4 or tensor.dtype not in TF_DTYPES:
        raise UnsupportedModel(
            f"input '{tensor.alias}' of {where} is {tensor.dtype} {_shape_text(tensor)}, not an image input "
            f"([batch, height, width, channels], numeric); its inputs: {_inputs_text(signature)}"
        )
    return tensor


def _axes(layout: str) -> tuple[int, int, int]:
    """(height, width, channel) axes of a 4-D input in `layout`."""
    return (2, 3, 1) if layout == "nchw" else (1, 2, 3)


def _layout(tensor: TensorView, layout: str | None) -> str:
    layout = layout or "nhwc"
    if layout not in LAYOUTS:
        raise InvalidEdit(f"unknown layout '{layout}'", hint=f"use one of: {listing(LAYOUTS)}")
    assert tensor.shape is not None
    channel = tensor.shape[_axes(layout)[2]]
    if layout == "nchw" and channel >= 0 and channel not in CHANNELS:
        raise UnsupportedModel(
            f"--layout nchw: input '{tensor.alias}' {_shape_text(tensor)} has {channel} on its channel axis (1); "
            "images decode to 1, 3 or 4 channels"
        )
    return layout


def _channels(tensor: TensorView, channels: int | None, layout: str = "nhwc") -> int:
    static = tensor.shape[_axes(layout)[2]] if tensor.shape else -1
    if static >= 0 and channels is not None and channels != static:
        raise InvalidEdit(f"--channels {channels} contradicts input '{tensor.alias}', which has {static} channels")
    value = static if static >= 0 else channels
    if value is None:
        raise UnsupportedModel(
            f"input '{tensor.alias}' {_shape_text(tensor)} has an unknown channel count",
            hint="pass --channels 1, 3 or 4",
        )
    if value not in CHANNELS:
        first = tensor.shape[1] if tensor.shape else -1
        hint = "pass --layout nchw (channels first)" if layout == "nhwc" and first in CHANNELS else None
        raise UnsupportedModel(
            f"input '{tensor.alias}' {_shape_text(tensor)} has {value} channels; images decode to 1, 3 or 4",
            hint=hint,
        )
    return value


def _size(tensor: TensorView, size: Sequence[int] | None, layout: str = "nhwc") -> tuple[int, int]:
    assert tensor.shape is not None
    axis_h, axis_w, _ = _axes(layout)
    static = (tensor.shape[axis_h], tensor.shape[axis_w])
    if size is None:
        if min(static) < 0:
            raise UnsupportedModel(
                f"input '{tensor.alias}' {_shape_text(tensor)} has a dynamic height or width",
                hint="pass --size H W to choose the size images are resized to",
            )
        return static
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise InvalidEdit(f"--size {height} {width}: both must be positive")
    for axis, wanted, fixed in (("height", height, static[0]), ("width", width, static[1])):
        if fixed >= 0 and wanted != fixed:
            raise InvalidEdit(f"--size {height} {width} contradicts input '{tensor.alias}', whose {axis} is {fixed}")
    return height, width


def _floats(text: str | Sequence[float] | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError as error:
        raise InvalidEdit(f"{what} {text!r}: expected comma-separated numbers") from error
    if not values:
        raise InvalidEdit(f"{what} is empty")
    if not all(math.isfinite(v) for v in values):
        # A NaN or an infinity makes every output NaN, and verification would still agree with itself.
        raise InvalidEdit(f"{what} {text!r}: every value must be a finite number (no nan or inf)")
    return values


def _per_channel(text: str | Sequence[float] | None, what: str, channels: int) -> tuple[float, ...] | None:
    values = _floats(text, what)
    if values is not None and len(values) not in (1, channels):
        raise InvalidEdit(f"{what} has {len(values)} values; give 1 or {channels} (one per channel)")
    if values is not None and len(values) == 1:
        values = values * channels
    return values


def _crop(text: str | float | None) -> float | None:
    """`central:FRACTION` (or a number) -> FRACTION in (0, 1]."""
    if text is None:
        return None
    value = str(text)
    kind, sep, fraction = value.partition(":")
    if not sep:
        kind, fraction = "central", value
    try:
        number = float(fraction)
    except ValueError:
        number = float("nan")
    if kind != "central" or not 0.0 < number <= 1.0:
        raise InvalidEdit(f"--crop {value!r}: expected central:FRACTION with FRACTION in (0, 1], e.g. central:0.875")
    return number


def _resize_shorter(value: int | None, size: tuple[int, int], options: dict) -> int | None:
    if value is None:
        return None
    value = int(value)
    if value < max(size):
        raise InvalidEdit(
            f"--resize-shorter {value} is smaller than the input size {size[0]}x{size[1]}; "
            "the center crop needs the shorter side at least that large"
        )
    if options.get("preserve_aspect_ratio"):
        raise InvalidEdit("--resize-shorter already keeps the aspect ratio; it cannot go with --preserve-aspect-ratio")
    return value


def _preset(name: str | None, tensor: TensorView, channels: int, options: dict) -> dict:
    """The spec fields a preset fixes; refuses explicit options that disagree with its mode."""
    if name is None:
        return {}
    mode = preset_mode(name)
    if mode is None:
        raise InvalidEdit(
            f"unknown preset '{name}'", hint=f"modes: {listing(MODES)}; families: {listing(sorted(FAMILIES))}"
        )
    if channels != 3 or TF_DTYPES[tensor.dtype] not in ("float32", "float16", "float64", "bfloat16"):
        raise UnsupportedModel(
            f"--preset {name} makes 3-channel float images; input '{tensor.alias}' is {tensor.dtype} "
            f"with {channels} channel(s)"
        )
    fixed = {"scale": mode.scale, "mean": mode.mean, "std": mode.std, "channel_order": mode.channel_order}
    for option, value in fixed.items():
        given = options.get(option)
        if given is None or (option == "channel_order" and given == value):
            continue
        parsed = _floats(given, f"--{option}") if option != "channel_order" else given
        if option in ("mean", "std") and parsed is not None and len(parsed) == 1:
            parsed = parsed * 3
        if parsed != value:
            shown = ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else value
            raise InvalidEdit(
                f"--preset {name} (mode {mode.name}) disagrees with --{option.replace('_', '-')} {given}: "
                f"the mode uses {shown or 'none'}",
                hint="drop the option, or drop --preset and give every step yourself",
            )
    return {**fixed, "preset": name, "preset_mode": mode.name}


def _spec(tensor: TensorView, channels: int, size: tuple[int, int], options: dict) -> ImageSpec:
    resize = "bilinear" if options.get("resize") is None else options["resize"]
    if resize not in RESIZE_METHODS:
        raise InvalidEdit(f"unknown resize method '{resize}'", hint=f"use one of: {listing(RESIZE_METHODS)}")
    order = options.get("channel_order") or "rgb"
    if order not in CHANNEL_ORDERS:
        raise InvalidEdit(f"unknown channel order '{order}'", hint=f"use one of: {listing(CHANNEL_ORDERS)}")
    if order == "bgr" and channels != 3:
        raise InvalidEdit(f"--channel-order bgr needs 3 channels; input '{tensor.alias}' has {channels}")
    preset = _preset(options.get("preset"), tensor, channels, options)
    extra = {
        "channel_order": order,
        "layout": options.get("layout") or "nhwc",
        "crop": _crop(options.get("crop")),
        "resize_shorter": _resize_shorter(options.get("resize_shorter"), size, options),
        **preset,
    }
    if preset:
        return ImageSpec(
            height=size[0], width=size[1], channels=channels, dtype=tensor.dtype, resize=resize,
            preserve_aspect_ratio=bool(options.get("preserve_aspect_ratio")),
            base64_in_graph=bool(options.get("base64_in_graph")), **extra,
        )  # fmt: skip
    integer = TF_DTYPES[tensor.dtype] not in ("float32", "float16", "float64", "bfloat16")
    scale = _floats(options.get("scale"), "--scale") or ((0.0, 255.0) if integer else (0.0, 1.0))
    if len(scale) != 2 or not scale[0] < scale[1]:
        raise InvalidEdit(f"--scale {options.get('scale')!r}: expected LOW,HIGH with LOW < HIGH (e.g. -1,1)")
    std = _per_channel(options.get("std"), "--std", channels)
    if std is not None and min(std) <= 0.0:
        raise InvalidEdit(f"--std {options.get('std')!r}: every value must be positive (it divides)")
    return ImageSpec(
        height=size[0],
        width=size[1],
        channels=channels,
        dtype=tensor.dtype,
        resize=resize,
        preserve_aspect_ratio=bool(options.get("preserve_aspect_ratio")),
        scale=(scale[0], scale[1]),
        mean=_per_channel(options.get("mean"), "--mean", channels),
        std=std,
        base64_in_graph=bool(options.get("base64_in_graph")),
        **extra,
    )


def _check_name(name: str, what: str) -> str:
    if not name:
        raise InvalidName(f"{what} is empty", hint="use letters, digits, _ . - /")
    if not _NAME.match(name) or name == INIT_OP_SIGNATURE:
        raise InvalidName(f"{what} '{name}' is not a usable name", hint="use letters, digits, _ . - /")
    return name


def _keys(meta: MetaGraph, signature: SignatureView, target: str | None, keep: str | None, replace: bool) -> tuple:
    """(target key, key the original moves to or None)."""
    existing = meta.signature_keys()
    if replace:
        if target is not None and target != signature.key:
            raise InvalidEdit(f"--replace edits signature '{signature.key}' in place; it cannot go with --as {target}")
        return signature.key, None
    target = _check_name(DEFAULT_IMAGE_KEY if target is None else target, "--as signature key")
    if target != signature.key:
        if target in existing:
            raise NameCollision(
                f"signature '{target}' already exists in {meta.model.ref}",
                hint="choose another key with --as, or --replace to edit the signature in place",
            )
        return target, None
    keep = _check_name(DEFAULT_KEEP_ORIGINAL_AS if keep is None else keep, "--keep-original-as signature key")
    if keep in existing:
        raise NameCollision(
            f"signature '{keep}' already exists in {meta.model.ref}; the original '{signature.key}' cannot move there",
            hint="choose another key with --keep-original-as",
        )
    return target, keep


def _route(meta: MetaGraph, route: str | None) -> str:
    route = "auto" if route is None else route
    if route not in ROUTES:
        raise InvalidEdit(f"unknown route '{route}'", hint=f"use one of: {listing(ROUTES)}")
    if route == "function" and meta.kind != "tf2":
        raise UnsupportedModel("route 'function' needs a TF2 export (tf.saved_model.save); this is a TF1 export")
    if route == "auto":
        return "function" if meta.kind == "tf2" else "session"
    return route


def image_spec(
    image: TensorView, *, size: Sequence[int] | None = None, channels: int | None = None, decoding: dict | None = None
) -> ImageSpec:
    """How image files become rows of `image` (also used for image features inside tf.Examples)."""
    decoding = dict(decoding or {})
    layout = _layout(image, decoding.get("layout"))
    count = _channels(image, channels, layout)
    return _spec(image, count, _size(image, size, layout), {**decoding, "layout": layout})


def plan_image_input(
    path: str | Path | SavedModelFile,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    out_base: str | Path | None = None,
    input_alias: str | None = None,
    input_name: str | None = None,
    size: Sequence[int] | None = None,
    channels: int | None = None,
    new_key: str | None = None,
    keep_original_as: str | None = None,
    replace: bool = False,
    route: str | None = None,
    **decoding: object,
) -> ImagePlan:
    """Check the request against the model; every choice settled, nothing written.

    `decoding`: resize, preserve_aspect_ratio, scale ("LOW,HIGH"), mean, std
    ("a,b,c" or one value), base64_in_graph, channel_order (rgb|bgr), layout
    (nhwc|nchw), crop ("central:FRACTION"), resize_shorter (N), preset (a
    keras.applications family or mode, see `image_presets`).
    """
    unknown = set(decoding) - set(DECODING_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
    model = path if isinstance(path, SavedModelFile) else read(path)  # a model in memory: a recipe's draft
    meta = model.meta_graph(tags)
    key = "serving_default" if signature is None else signature
    view = meta.signature(key)
    image = choose_input(view, input_alias)
    spec = image_spec(image, size=size, channels=channels, decoding=decoding)
    new_alias = _check_name(f"{image.alias}_bytes" if input_name is None else input_name, "--input-name")
    if new_alias in {t.alias for t in view.inputs if t.alias != image.alias}:
        raise NameCollision(
            f"signature '{key}' already has an input '{new_alias}'", hint="choose another with --input-name"
        )
    target_key, keep = _keys(meta, view, new_key, keep_original_as, replace)
    changes_existing = replace or target_key == key
    warmup = model.path / "assets.extra" / WARMUP
    drop = (WARMUP,) if changes_existing and warmup.is_file() else ()
    return ImagePlan(
        model=model,
        meta=meta,
        signature=view,
        image=image,
        new_alias=new_alias,
        target=target_key,
        keep_original_as=keep,
        replace=replace,
        spec=spec,
        base=target_base(model, out_base),
        route=_route(meta, route),
        drop_extra=drop,
    )
