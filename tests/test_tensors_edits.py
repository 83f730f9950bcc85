"""Function-internal tensors of TF2 and Keras 3 exports as outputs and signatures, object graph kept.

Each exposed value is checked against a route that does not go through
smsurgery's threading: a Keras sub-model `keras.Model(inputs, layer.output)`
with the same weights, or a second signature of the tf.Module that returns
the same intermediate by itself. Both loaders are checked by name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from smsurgery import read
from smsurgery.core.errors import InvalidEdit, TensorNotFound, UnsupportedModel
from smsurgery.core.graphmodel import GraphModel
from smsurgery.core.tensor_index import signature_tensors
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import AddOutput, AddSignature, Repoint
from smsurgery.graph.session import load_session, load_tf2, run_tf2
from smsurgery.publishing.target import PublishTarget
from tests import tensor_models
from tests.conftest import REALMODELS, assert_one_line_error, run_cli, tree_digest

pytestmark = pytest.mark.slow
RNG = np.random.RandomState(7)
IMAGES = RNG.uniform(0, 1, size=(2, 16, 16, 3)).astype(np.float32)
X = RNG.normal(size=(2, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tensor_models")
    conv = tensor_models.keras_conv(root / "conv")
    two = tensor_models.keras_two_in_two_out(root / "two")
    tensor_models.keras_two_in_two_out(root / "two_save", saved_model_save=True)
    tensor_models.nested_module(root / "nested")
    return {"root": root, "conv": conv, "two": two}


@pytest.fixture
def copy(built, tmp_path):
    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(built["root"] / name, target)
        return target

    return make


def both_loaders(path: Path, key: str, feeds: dict) -> tuple[dict, dict]:
    with load_session(path, ["serve"]) as session:
        tf1 = session.run(key, feeds)
    loaded = load_tf2(path)
    return tf1, run_tf2(loaded, key, feeds)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_keras_pool_output_as_output_and_as_signature_equals_the_sub_model(built, copy) -> None:
    import keras

    base, model = copy("conv"), built["conv"]
    embedding = keras.Model(model.inputs, model.get_layer("pool").output).predict(IMAGES, verbose=0)
    probs = model.predict(IMAGES, verbose=0)
    first = edit(base, [AddOutput("serving_default", "embedding", "layer:pool")])
    assert first.verification.ok
    probs_name = read(first.path).meta_graph().signature("serving_default").output("output_0").name
    embed = AddSignature("embed", {}, {"embedding": "pool_1/Mean", "probs": probs_name})  # one kept as it is
    second = edit(base, [embed], target=PublishTarget(version=3))
    for path in (first.path, second.path):
        tf1, tf2 = both_loaders(path, "serving_default", {"image": IMAGES})
        for values in (tf1, tf2):
            assert_close(values["output_0"], probs)
    for values in both_loaders(first.path, "serving_default", {"image": IMAGES}):
        assert_close(values["embedding"], embedding)
    for values in both_loaders(second.path, "embed", {"image": IMAGES}):
        assert sorted(values) == ["embedding", "probs"]
        assert_close(values["embedding"], embedding)
        assert_close(values["probs"], probs)
    loaded = load_tf2(second.path)  # the module's other attributes survive: .serve and the variables
    assert_close(loaded.serve(IMAGES).numpy(), probs)
    assert len(loaded.variables) == len(model.variables)
    source = load_tf2(base / "1")
    assert sorted(loaded.signatures) == sorted([*source.signatures, "embed"])


def test_serve_signature_of_the_source_computes_what_it_did(built, copy) -> None:
    base = copy("conv")
    result = edit(base, [AddOutput("serving_default", "embedding", "layer:pool")])
    before = read(base / "1").meta_graph().proto
    after = read(result.path).meta_graph().proto
    assert after.signature_def["serve"] == before.signature_def["serve"]
    names = {f.signature.name for f in before.graph_def.library.function}
    changed = read(base / "1").meta_graph().proto.signature_def["serving_default"].outputs["output_0"].name
    wrapper = next(n for n in before.graph_def.node if n.name == changed.split(":")[0]).attr["f"].func.name
    for function in before.graph_def.library.function:  # all but the edited signature's own wrapper, byte for byte
        if function.signature.name == wrapper:
            continue
        twin = next(f for f in after.graph_def.library.function if f.signature.name == function.signature.name)
        assert twin.SerializeToString(deterministic=True) == function.SerializeToString(deterministic=True)
    assert len(after.graph_def.library.function) > len(names)


def test_two_inputs_two_outputs_layer_output_sorted_before_existing_keys(built, copy) -> None:
    import keras

    base, model = copy("two"), built["two"]
    feeds = {"a": RNG.normal(size=(2, 4)).astype(np.float32), "b": RNG.normal(size=(2, 3)).astype(np.float32)}
    joint = keras.Model(model.inputs, model.get_layer("joint").output).predict(feeds, verbose=0)
    want = model.predict(feeds, verbose=0)
    result = edit(base, [AddOutput("serving_default", "a_joint", "layer:joint")])  # sorts first
    for values in both_loaders(result.path, "serving_default", feeds):
        assert sorted(values) == ["a_joint", "aux", "score"]
        assert_close(values["a_joint"], joint)
        assert_close(values["aux"], want["aux"])
        assert_close(values["score"], want["score"])


def test_saved_model_save_export_of_keras_model(built, copy) -> None:
    import keras

    base, model = copy("two_save"), built["two"]
    feeds = {"a": RNG.normal(size=(2, 4)).astype(np.float32), "b": RNG.normal(size=(2, 3)).astype(np.float32)}
    joint = keras.Model(model.inputs, model.get_layer("joint").output).predict(feeds, verbose=0)
    signature = read(base).meta_graph().signature("serving_default")  # inputs are `inputs`, `inputs_1` here
    by_width = {4: feeds["a"], 3: feeds["b"]}
    feeds = {t.alias: by_width[t.shape[-1]] for t in signature.inputs}
    found = signature_tensors(GraphModel(read(base).meta_graph().proto))
    assert "joint" in found.layers()
    result = edit(base, [AddOutput("serving_default", "hidden", "layer:joint")])
    tf2 = run_tf2(load_tf2(result.path), "serving_default", feeds)
    assert_close(tf2["hidden"], joint)


def test_module_intermediate_through_three_levels_equals_second_function(copy) -> None:
    base = copy("nested")
    features = run_tf2(load_tf2(base / "1"), "features", {"x": X})["hidden"]
    y = run_tf2(load_tf2(base / "1"), "serving_default", {"x": X})["y"]
    result = edit(base, [AddOutput("serving_default", "hidden", "hidden")])
    assert result.verification.ok
    for values in both_loaders(result.path, "serving_default", {"x": X}):
        assert_close(values["hidden"], features)
        assert_close(values["y"], y)
    for values in both_loaders(result.path, "features", {"x": X}):
        assert_close(values["hidden"], features)
    loaded = load_tf2(result.path)
    assert_close(loaded.inner(X).numpy(), features)  # the module's own tf.functions still work


def test_repoint_output_to_an_inner_tensor(copy) -> None:
    base = copy("nested")
    features = run_tf2(load_tf2(base / "1"), "features", {"x": X})["hidden"]
    found = signature_tensors(GraphModel(read(base).meta_graph().proto))
    address = next(e.address for e in found.entries if e.ref.node == "hidden")
    result = edit(base, [Repoint("serving_default", "y", address)], target=PublishTarget(verify=False))
    assert any("changes shape" in w for w in result.report.warnings)
    for values in both_loaders(result.path, "serving_default", {"x": X}):
        assert sorted(values) == ["y"]
        assert_close(values["y"], features)


def test_second_output_through_the_same_functions_clones_nothing_twice(copy) -> None:
    base = copy("nested")
    result = edit(
        base, [AddOutput("serving_default", "hidden", "hidden"), AddOutput("serving_default", "pre", "add:z:0")]
    )  # fmt: skip
    meta = read(result.path).meta_graph().proto
    source = read(base / "1").meta_graph().proto
    # serve, middle, inner cloned once each (serve is a module attribute, hence shared), not once per
    # output; the signature's own wrapper is private and changed in place
    assert len(meta.graph_def.library.function) == len(source.graph_def.library.function) + 3
    features = run_tf2(load_tf2(base / "1"), "features", {"x": X})["hidden"]
    for values in both_loaders(result.path, "serving_default", {"x": X}):
        assert_close(values["hidden"], features)
        assert (values["pre"] >= values["hidden"] - 1e-6).all() or (values["hidden"] == 0).any()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("tensor", "error", "words"),
    [
        ("MatMul", InvalidEdit, ["names 2 tensors", "__inference_inner"]),
        ("hiden", TensorNotFound, ["no tensor", "closest", "hidden:activations:0"]),
        ("layer:dense", TensorNotFound, ["no keras layer"]),
        ("__inference_nothing_1::x", TensorNotFound, ["does not compute"]),
        ("matmul_readvariableop_resource", UnsupportedModel, ["ambiguous"]),
    ],
)
def test_bad_tensor_names_write_nothing(copy, tensor: str, error: type, words: list[str]) -> None:
    base = copy("nested")
    before = tree_digest(base)
    if tensor == "matmul_readvariableop_resource":
        found = signature_tensors(GraphModel(read(base).meta_graph().proto))
        tensor = next(e.address for e in found.entries if e.ref.node == "matmul_readvariableop_resource")
        words = ["DT_RESOURCE", "cannot return"]
    with pytest.raises(error) as raised:
        edit(base, [AddOutput("serving_default", "out", tensor)])
    for word in words:
        assert word.lower() in str(raised.value).lower()
    assert tree_digest(base) == before


def test_cli_refuses_loop_body_tensor_and_inner_input(copy) -> None:
    base = copy("nested")
    before = tree_digest(base)
    found = signature_tensors(GraphModel(read(base).meta_graph().proto))
    body = next(e.address for e in found.entries if e.context and e.ref.node == "while/mul")
    assert_one_line_error(run_cli("output", "add", base, "looped", body), "While body", "only inside")
    hidden = next(e.address for e in found.entries if e.ref.node == "hidden")
    result = run_cli("signature", "add", base, "k", "--input", f"x={hidden}", "--output", "h=hidden")
    assert_one_line_error(result, "inside a function", "cannot be fed")
    result = run_cli("alias", "repoint", base, "x", hidden, "--input")
    assert_one_line_error(result, "cannot be repointed", "only the signature function's arguments")
    assert_one_line_error(run_cli("output", "add", base, "out", "--layer", "nope"), "no keras layer")
    assert tree_digest(base) == before


def test_cli_layer_option_and_tensors_address_on_keras_export(copy) -> None:
    base = copy("conv")
    result = run_cli("output", "add", base, "embedding", "--layer", "pool", "--no-verify")
    assert result.code == 0, result.stderr
    result = run_cli("signature", "add", base, "embed", "--layer", "embedding=pool", "--no-verify")
    assert result.code == 0, result.stderr
    meta = read(base).meta_graph()
    assert meta.signature("embed").outputs[0].alias == "embedding" and meta.tags == ("serve",)


@pytest.mark.parametrize("name", ["rust_regression_savedmodel", "tf_x_plus_y_v2_debuginfo",
                                  "tfjs_model_single_input_multi_output"])  # fmt: skip
def test_real_tf2_exports_expose_an_inner_tensor(model_copy, tmp_path, name: str) -> None:
    if not (REALMODELS / name).is_dir():
        pytest.skip("real models not present")
    base = model_copy(REALMODELS / name)
    meta = read(base).meta_graph().proto
    found = signature_tensors(GraphModel(meta))
    inner = [e for e in found.entries if e.ref.scope and e.fetchable and e.op not in ("Arg", "Const", "NoOp")
             and e.dtype is not None and e.dtype not in (20, 21)]  # fmt: skip
    assert inner, f"{name}: no inner tensor listed"
    entry = inner[len(inner) // 2]
    result = edit(base, [AddOutput(found.key, "exposed", entry.address)], target=PublishTarget(base=tmp_path / "out"))
    assert result.verification.ok, result.verification.failures()
    read(result.path).meta_graph().signature(found.key).output("exposed")


def test_tf2_input_repoint_to_another_placeholder_is_sound(built, copy) -> None:
    base, model = copy("conv"), built["conv"]
    # verify=False: edit verification does not feed a repointed input; the values are checked here
    repoint = Repoint("serving_default", "image", "serve_image:0", side="inputs")
    result = edit(base, [repoint], target=PublishTarget(verify=False))
    assert read(result.path).meta_graph().signature("serving_default").input("image").name == "serve_image:0"
    for values in both_loaders(result.path, "serving_default", {"image": IMAGES}):
        assert_close(values["output_0"], model.predict(IMAGES, verbose=0))
    with pytest.raises(UnsupportedModel, match="only the signature function's arguments"):
        edit(base, [Repoint("serving_default", "image", "conv_1/Relu", side="inputs")])


def test_image_input_takes_an_added_signature(built, copy) -> None:
    import keras
    import tensorflow as tf

    base, model = copy("conv"), built["conv"]
    edit(base, [AddSignature("embed", {}, {"embedding": "layer:pool"})], target=PublishTarget(verify=False))
    result = run_cli("image-input", base, "--signature", "embed", "--as", "embed_b64", "--size", "16", "16")
    assert result.code == 0, result.stderr
    image = (IMAGES[0] * 255).astype(np.uint8)
    png = tf.io.encode_png(image).numpy()
    decoded = tf.image.convert_image_dtype(tf.io.decode_png(png, channels=3), tf.float32).numpy()[None]
    want = keras.Model(model.inputs, model.get_layer("pool").output).predict(decoded, verbose=0)
    newest = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    for values in both_loaders(base / str(newest), "embed_b64", {"image_bytes": np.array([png])}):
        assert_close(values["embedding"], want)


def test_drop_object_graph_still_takes_function_addresses(copy) -> None:
    base = copy("nested")
    features = run_tf2(load_tf2(base / "1"), "features", {"x": X})["hidden"]
    result = edit(base, [AddOutput("serving_default", "hidden", "hidden")], drop_object_graph=True)
    assert read(result.path).meta_graph().kind == "tf1"
    for values in both_loaders(result.path, "serving_default", {"x": X}):
        assert_close(values["hidden"], features)
    for values in both_loaders(result.path, "features", {"x": X}):  # the shared inner function, untouched
        assert_close(values["hidden"], features)
