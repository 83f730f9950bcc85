"""`smsurgery image-input`: accept JPEG/PNG/GIF/BMP bytes (`{"b64": ...}`) in front of an image input."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smsurgery.cli.attach_report import print_report
from smsurgery.cli.common import note, out, parse_tags, working
from smsurgery.cli.options import JsonOpt, PathArg, SignatureOpt, TagsOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.publishing.target import PublishTarget

InputAliasOpt = Annotated[
    str | None, typer.Option("--input", help="The image input's alias (default: the only image-like input).")
]
InputNameOpt = Annotated[
    str | None, typer.Option("--input-name", help="Alias of the new string input (default: <alias>_bytes).")
]
SizeOpt = Annotated[
    tuple[int, int] | None,
    typer.Option("--size", help="Height and width to resize to; needed when the input's are dynamic."),
]
ChannelsOpt = Annotated[
    int | None, typer.Option("--channels", help="Channel count (1, 3, 4) when the input's is unknown.")
]
ResizeOpt = Annotated[
    str, typer.Option("--resize", help="bilinear, nearest, bicubic, area, lanczos3/5, gaussian, mitchellcubic.")
]
AspectOpt = Annotated[
    bool, typer.Option("--preserve-aspect-ratio", help="Resize without distortion and pad with black.")
]
ScaleOpt = Annotated[
    str | None, typer.Option("--scale", help="Value range LOW,HIGH (default 0,1 for floats, 0,255 for integers).")
]
MeanOpt = Annotated[str | None, typer.Option("--mean", help="Per-channel mean subtracted after scaling.")]
StdOpt = Annotated[str | None, typer.Option("--std", help="Per-channel std divided by after the mean.")]
NewKeyOpt = Annotated[
    str | None, typer.Option("--as", help="Key of the new signature (default serving_b64).", show_default=False)
]
KeepOriginalOpt = Annotated[
    str | None, typer.Option("--keep-original-as", help="With --as equal to --signature: where the original moves.")
]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="Change the signature's input in place.")]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="keras.applications preprocess_input, exactly: a mode (tf, torch, caffe, none) or a family "
        "(caffe: resnet, resnet50, vgg16, vgg19; tf: resnet_v2, mobilenet, mobilenet_v2, inception_v3, "
        "inception_resnet_v2, xception, nasnet; torch: densenet; none: efficientnet, efficientnet_v2, "
        "convnext, mobilenet_v3).",
    ),
]
ChannelOrderOpt = Annotated[
    str | None, typer.Option("--channel-order", help="rgb (default) or bgr: channel order the model takes.")
]
LayoutOpt = Annotated[
    str | None, typer.Option("--layout", help="nhwc (default, channels last) or nchw (channels first).")
]
CropOpt = Annotated[
    str | None, typer.Option("--crop", help="central:FRACTION: keep the central part of each side first.")
]
ResizeShorterOpt = Annotated[
    int | None, typer.Option("--resize-shorter", help="Resize the shorter side to N (aspect kept), then center-crop.")
]
Base64Opt = Annotated[bool, typer.Option("--base64-in-graph", help="Also decode web-safe base64 text in the graph.")]
RouteOpt = Annotated[str, typer.Option("--route", help="auto, session (TF1 graph) or function (TF2).")]


@publish_options
def image_input(
    path: PathArg,
    signature: SignatureOpt = None,
    input_alias: InputAliasOpt = None,
    input_name: InputNameOpt = None,
    size: SizeOpt = None,
    channels: ChannelsOpt = None,
    resize: ResizeOpt = "bilinear",
    preserve_aspect_ratio: AspectOpt = False,
    scale: ScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    new_key: NewKeyOpt = None,
    keep_original_as: KeepOriginalOpt = None,
    replace: ReplaceOpt = False,
    preset: PresetOpt = None,
    channel_order: ChannelOrderOpt = None,
    layout: LayoutOpt = None,
    crop: CropOpt = None,
    resize_shorter: ResizeShorterOpt = None,
    base64_in_graph: Base64Opt = False,
    route: RouteOpt = "auto",
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Add a signature that takes image files as a string input, decoding them in the graph."""
    from smsurgery.graph.image import add_image_input

    with working("starting TensorFlow, building and verifying the new version"):
        report = add_image_input(
            path, signature, tags=parse_tags(tags), target=target, input_alias=input_alias, input_name=input_name,
            size=size, channels=channels, resize=resize, preserve_aspect_ratio=preserve_aspect_ratio, scale=scale,
            mean=mean, std=std, new_key=new_key, keep_original_as=keep_original_as, replace=replace,
            base64_in_graph=base64_in_graph, route=route, preset=preset, channel_order=channel_order, layout=layout,
            crop=crop, resize_shorter=resize_shorter,
        )  # fmt: skip
    print_report(report.to_json(), as_json, render)


def render(report: dict[str, Any]) -> None:
    other = "".join(f", {alias}" for alias in report["other_inputs"])
    out.print(
        f"signature '{report['target']}': {report['new_input']} (DT_STRING, [None]){other} -> "
        + ", ".join(report["outputs"])
    )
    out.print(
        f"  each image: decode to {report['channels']} channels, "
        + (f"central crop {report['crop']:g}, " if report["crop"] else "")
        + (f"shorter side to {report['resize_shorter']} and center crop, " if report["resize_shorter"] else "")
        + f"resize to {report['height']}x{report['width']} "
        f"({report['resize']}{', aspect kept, padded' if report['preserve_aspect_ratio'] else ''}), "
        f"scale to {report['scale'][0]:g}..{report['scale'][1]:g}"
        + (f", mean {report['mean']}" if report["mean"] else "")
        + (f", std {report['std']}" if report["std"] else "")
        + (", BGR" if report["channel_order"] == "bgr" else "")
        + (", NCHW" if report["layout"] == "nchw" else "")
        + (f" (preset {report['preset']}, mode {report['preset_mode']})" if report["preset"] else "")
        + f", {report['dtype']}; feeds '{report['input']}' of '{report['signature']}'"
    )
    if report["kept_original_as"]:
        out.print(f"the original '{report['signature']}' is now '{report['kept_original_as']}'")
    for dropped in report["dropped_files"]:
        note(f"not carried over: assets.extra/{dropped} (its requests target a signature whose input changed)")
    if report["verification"]:
        diffs = report["verification"]["new_signature_max_abs_diff"]
        out.print(
            "verified: new signature vs eager decoding, max abs diff "
            + ", ".join(f"{loader} {value:.2g}" for loader, value in diffs.items())
            + f"; {len(report['verification']['original_signatures'])} original signature(s) checked"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("image-input")(image_input)
