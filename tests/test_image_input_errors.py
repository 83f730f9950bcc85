"""`image-input` refuses bad requests: one line, exit 2, nothing written, before TensorFlow starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsurgery.attach.image_plan import plan_image_input
from smsurgery.core import protos
from smsurgery.core.errors import (
    AliasNotFound,
    InvalidEdit,
    InvalidName,
    NameCollision,
    SignatureNotFound,
    UnsupportedModel,
)
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest


def edit_input_shape(version_dir: Path, alias: str, shape: list[int] | None) -> None:
    """Rewrite one input's declared shape in saved_model.pb (the plan reads only the protos)."""
    path = version_dir / "saved_model.pb"
    saved_model = protos.SavedModel()
    saved_model.ParseFromString(path.read_bytes())
    info = saved_model.meta_graphs[0].signature_def["serving_default"].inputs[alias]
    info.tensor_shape.Clear()
    if shape is None:
        info.tensor_shape.unknown_rank = True
    for size in shape or []:
        info.tensor_shape.dim.add().size = size
    path.write_bytes(saved_model.SerializeToString(deterministic=True))


def assert_refused(base: Path, *args: str, words: tuple[str, ...]) -> None:
    before = tree_digest(base)
    result = run_cli("image-input", base, *args)
    assert_one_line_error(result, *words)
    assert tree_digest(base) == before  # nothing written, no staging folder left


def test_cli_bad_inputs_exit_2_and_write_nothing(model_copy) -> None:
    assert_refused(model_copy("tf1_lookup"), words=("no image-like input", "words DT_STRING [None]"))
    assert_refused(model_copy("tf2_image_dynamic"), words=("dynamic height or width", "--size H W"))
    assert_refused(model_copy("keras_image"), "--as", "serve", words=("signature 'serve' already exists",))
    five = model_copy("tf1_image", "five_channels")
    edit_input_shape(five / "1", "image", [-1, 32, 32, 5])
    assert_refused(five, words=("5 channels", "1, 3 or 4"))
    unknown = model_copy("tf1_image", "unknown_channels")
    edit_input_shape(unknown / "1", "image", [-1, 32, 32, -1])
    assert_refused(unknown, words=("unknown channel count", "--channels"))
    assert_refused(
        model_copy("keras_image", "tolerance"), "--rtol", "-1", words=("--rtol", "must be a finite number >= 0")
    )


@pytest.mark.skipif(not (REALMODELS / "tf2onnx_regression").is_dir(), reason="shared/realmodels not present")
def test_cli_unknown_rank_input(model_copy) -> None:
    assert_refused(model_copy(REALMODELS / "tf2onnx_regression"), words=("input 'X'", "unknown rank"))


def test_cli_json_report(model_copy) -> None:
    base = model_copy("tf1_image")
    result = run_cli("image-input", base, "--scale", "-1,1", "--resize", "area", "--rtol", "0", "--atol", "0", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "smsurgery.image-input/1"
    assert (report["version"], report["target"], report["new_input"], report["route"]) == (
        2,
        "serving_b64",
        "image_bytes",
        "session",
    )
    assert (report["height"], report["width"], report["channels"], report["scale"]) == (32, 32, 3, [-1.0, 1.0])
    assert report["signatures"] == ["serving_b64", "serving_default"]
    assert report["verification"]["new_signature_max_abs_diff"] == {"tf1": 0.0, "tf2": 0.0}
    assert report["verification"]["original_signatures"] == {"serving_default": "identical"}
    assert (report["verification"]["rtol"], report["verification"]["atol"]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("model", "options", "error", "words"),
    [
        ("tf1_image", {"signature": "predict"}, SignatureNotFound, ("no signature 'predict'", "serving_default")),
        ("tf1_image", {"input_alias": "temperature"}, UnsupportedModel, ("temperature", "not an image input")),
        ("tf1_image", {"input_alias": "nope"}, AliasNotFound, ("nope", "image, temperature")),
        ("tf1_image", {"channels": 1}, InvalidEdit, ("--channels 1", "3 channels")),
        ("tf1_image", {"size": (3, 4)}, InvalidEdit, ("--size 3 4", "height is 32")),
        ("tf1_image", {"resize": "cubic"}, InvalidEdit, ("cubic", "bilinear")),
        ("tf1_image", {"scale": "0"}, InvalidEdit, ("--scale", "LOW,HIGH")),
        ("tf1_image", {"std": "1,0,1"}, InvalidEdit, ("--std", "0")),
        ("tf1_image", {"mean": "1,2"}, InvalidEdit, ("--mean has 2 values", "1 or 3")),
        ("tf1_image", {"input_name": "temperature"}, NameCollision, ("already has an input 'temperature'",)),
        ("tf1_image", {"input_name": "bad name"}, InvalidName, ("bad name",)),
        ("tf1_image", {"replace": True, "new_key": "other"}, InvalidEdit, ("--replace", "--as other")),
        ("tf1_image", {"route": "function"}, UnsupportedModel, ("function", "TF2 export")),
        ("tf1_image", {"new_key": "__saved_model_init_op"}, InvalidName, ("__saved_model_init_op",)),
        ("keras_image", {"new_key": "serving_default"}, None, ()),
        (
            "keras_image",
            {"new_key": "serving_default", "keep_original_as": "serve"},
            NameCollision,
            ("'serve' already exists", "--keep-original-as"),
        ),
        ("tf2_image_dynamic", {"size": (0, 5)}, InvalidEdit, ("positive",)),
    ],
)
def test_plan_refuses(model_copy, model: str, options: dict, error: type | None, words: tuple[str, ...]) -> None:
    base = model_copy(model)
    signature = options.pop("signature", None)
    if error is None:
        plan = plan_image_input(base, signature, **options)
        assert (plan.target, plan.keep_original_as) == ("serving_default", "serving_float")
        return
    with pytest.raises(error) as caught:
        plan_image_input(base, signature, **options)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_plan_wants_input_when_several_are_image_like(model_copy) -> None:
    base = model_copy("tf1_image")
    edit_input_shape(base / "1", "temperature", [-1, 8, 8, 1])
    with pytest.raises(AliasNotFound, match="several image-like inputs: image, temperature; choose one with --input"):
        plan_image_input(base)
    assert plan_image_input(base, input_alias="temperature").spec.channels == 1


def test_readme_flow_attach_then_rest_body(model_copy, tmp_path) -> None:
    """The README's flow: attach, build a REST body with {"b64": ...}, answer it as Serving would."""
    import numpy as np

    from smsurgery.graph.session import import_tf, load_session
    from tests.test_image_input_formats import jpeg

    tf = import_tf()
    base = model_copy("keras_image")
    assert run_cli("image-input", base, "--signature", "serving_default").code == 0
    picture = tmp_path / "cat.jpg"
    picture.write_bytes(jpeg(120, 90, seed=9))
    body = tmp_path / "body.json"
    made = run_cli("request", base, "--signature", "serving_b64", "--input", f"image_bytes=@{picture}", "-o", body)
    assert made.code == 0, made.stderr
    assert "b64" in json.loads(body.read_text())["instances"][0]["image_bytes"]
    answered = run_cli("run", base, "--body", body)
    assert answered.code == 0, answered.stderr
    got = np.array(json.loads(answered.stdout)["predictions"], np.float32)
    image = tf.image.convert_image_dtype(tf.io.decode_jpeg(picture.read_bytes(), channels=3), tf.float32)
    with load_session(base / "1", ("serve",)) as old:
        want = old.run("serving_default", {"image": tf.image.resize(image, [64, 64]).numpy()[None]})["output_0"]
    assert np.abs(got - want).max() <= 1e-5
