"""`keras.applications`' `preprocess_input`, as data: which family uses which mode.

Read at the source (keras/src/applications/imagenet_utils.py,
`_preprocess_numpy_input`, and each family's `preprocess_input`). On
pixels `x` in 0..255 (float32, after decoding and resizing):
- `tf`: `x / 127.5 - 1` ([-1, 1]);
- `torch`: `x / 255`, then per channel `(x - mean) / std` with the ImageNet
  mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), RGB order;
- `caffe`: RGB -> BGR, then subtract the ImageNet mean in BGR order
  (103.939, 116.779, 123.68), no scaling;
- `none`: the families whose `preprocess_input` returns its input (the model
  rescales inside): pixels 0..255 as floats.
Pure data and checks; no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("tf", "torch", "caffe", "none")


@dataclass(frozen=True)
class PresetMode:
    """The arithmetic of one mode, in the order it is applied to 0..255 pixels."""

    name: str
    scale: tuple[float, float]  # the range 0..255 maps onto (as the general --scale)
    channel_order: str  # rgb | bgr
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None


MODE_ARITHMETIC = {
    "tf": PresetMode("tf", (-1.0, 1.0), "rgb", None, None),
    "torch": PresetMode("torch", (0.0, 1.0), "rgb", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "caffe": PresetMode("caffe", (0.0, 255.0), "bgr", (103.939, 116.779, 123.68), None),
    "none": PresetMode("none", (0.0, 255.0), "rgb", None, None),
}

# family name (the keras.applications module) -> mode
FAMILIES = {
    "resnet": "caffe",
    "resnet50": "caffe",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "resnet_v2": "tf",
    "mobilenet": "tf",
    "mobilenet_v2": "tf",
    "inception_v3": "tf",
    "inception_resnet_v2": "tf",
    "xception": "tf",
    "nasnet": "tf",
    "densenet": "torch",
    "efficientnet": "none",
    "efficientnet_v2": "none",
    "convnext": "none",
    "mobilenet_v3": "none",
}

PRESETS = tuple(MODES) + tuple(FAMILIES)


def preset_mode(name: str) -> PresetMode | None:
    """The mode of a preset (a mode name or a family name); None when it is neither."""
    mode = name if name in MODES else FAMILIES.get(name)
    return MODE_ARITHMETIC[mode] if mode is not None else None
