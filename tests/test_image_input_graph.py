"""The general machinery under image-input: load into a session, rewire, publish a session.

`open_editable` + `publish_editable` must round-trip a model with assets, a
hash table and its init op; `put_in_front` must copy only what depends on
the replaced tensor and leave the original working; `publish_session` must
publish atomically, or not at all when the check before publishing fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from smsurgery import read
from smsurgery.core.errors import VerificationFailed
from smsurgery.graph.editable import open_editable
from smsurgery.graph.export import publish_editable, publish_session
from smsurgery.graph.rewire import front_signature, put_in_front
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from tests.conftest import tree_digest

tf = import_tf()
v1 = tf.compat.v1


def example(x: list[float]) -> bytes:
    feature = tf.train.Feature(float_list=tf.train.FloatList(value=x))
    return tf.train.Example(features=tf.train.Features(feature={"x": feature})).SerializeToString()


def test_round_trip_keeps_assets_tables_and_init_op(model_copy) -> None:
    base = model_copy("tf1_lookup")
    source = tree_digest(base / "1")
    words = np.array([b"cherry", b"apple", b"unknown-word"], dtype=object)
    examples = np.array([example([1.0, 2.0, 3.0]), example([0.0, -1.0, 0.5])], dtype=object)
    with open_editable(base) as editable:
        assert sorted(editable.signature_defs()) == ["classify", "serving_default"]
        assert [p.name for p in editable.asset_files.values()] == ["vocab.txt"]
        first = publish_editable(editable, base, editable.signature_defs())
        second = publish_editable(editable, base, editable.signature_defs())  # collections were put back
    assert (first.version, second.version) == (2, 3)
    assert tree_digest(base / "1") == source
    for version in (2, 3):
        assert (base / str(version) / "assets" / "vocab.txt").read_bytes() == (base / "1/assets/vocab.txt").read_bytes()
    with load_session(base / "1", ("serve",)) as old, load_session(base / "3", ("serve",)) as new:
        for key, feeds in (("serving_default", {"words": words}), ("classify", {"inputs": examples})):
            want, got = old.run(key, feeds), new.run(key, feeds)
            assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want), key
        ids = old.run("serving_default", {"words": words})["ids"]
    assert len(set(ids.tolist())) == 3  # the table was initialized from the asset: three different ids
    loaded = load_tf2(base / "3")
    assert sorted(loaded.signatures) == ["classify", "serving_default"]
    assert np.array_equal(run_tf2(loaded, "serving_default", {"words": words})["ids"], ids)


def test_tf2_export_in_a_session_matches_tf_saved_model_load() -> None:
    from tests.conftest import FIXTURE_MODELS

    image = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    with open_editable(FIXTURE_MODELS / "keras_image") as editable:
        assert editable.kind == "tf2" and editable.saver is not None and editable.init_op is not None
        signature = editable.signature_def("serving_default")
        got = editable.run(signature.outputs["output_0"].name, {signature.inputs["image"].name: image})
    want = run_tf2(load_tf2(FIXTURE_MODELS / "keras_image" / "1"), "serving_default", {"image": image})["output_0"]
    assert np.abs(got - want).max() <= 1e-6


def test_put_in_front_copies_only_what_depends_on_the_input() -> None:
    from tests.conftest import FIXTURE_MODELS

    rng = np.random.default_rng(1)
    image, temperature = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32), np.array([1.0, 2.0], np.float32)
    with open_editable(FIXTURE_MODELS / "tf1_image") as editable:
        original = editable.signature_def("serving_default")
        with editable.graph.as_default():
            halves = v1.placeholder(tf.float32, [None, 32, 32, 3], name="halves")
            new, rewired = front_signature(
                editable.graph, original, replaced={"image": halves * 2.0}, new_inputs={"halves": halves}, scope="x2"
            )
        assert rewired.copied == ["Conv2D", "MatMul", "Mean", "Relu", "logits", "probs", "truediv"]
        assert sorted(new.inputs) == ["halves", "temperature"] and new.inputs["temperature"].name == "temperature:0"
        fetch = {alias: info.name for alias, info in original.outputs.items()}
        want = editable.run(fetch, {original.inputs["image"].name: image, "temperature:0": temperature})
        new_fetch = {alias: info.name for alias, info in new.outputs.items()}
        got = editable.run(new_fetch, {halves: image / 2, "temperature:0": temperature})
        assert all(np.abs(got[k] - want[k]).max() <= 1e-6 for k in want)
        again = editable.run(fetch, {original.inputs["image"].name: image, "temperature:0": temperature})
        assert all(np.array_equal(again[k], want[k]) for k in want)  # the original is untouched


def test_put_in_front_keeps_outside_control_inputs() -> None:
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        counter = tf.Variable(0.0, name="counter")
        bump = tf.group(counter.assign_add(1.0), name="bump")
        tripled = tf.multiply(x, 3.0, name="mul")
        with tf.control_dependencies([bump]):
            tf.identity(tripled, name="y")
        z = v1.placeholder(tf.float32, [None], name="z")
        rewired = put_in_front(graph, {"x:0": z + 1.0}, ["y:0"], scope="front")
        copy = rewired.outputs["y:0"]
        copies = [op for op in graph.get_operations() if op.name.startswith("front/")]
        assert copy.name == "front/y:0" and sorted(op.name for op in copies) == ["front/mul", "front/y"]
        assert [c.name for op in copies for c in op.control_inputs] == ["bump"]
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            assert list(session.run(copy, {z: [1.0, 2.0]})) == [6.0, 9.0]
            assert session.run(counter) == 1.0  # the external control input ran


def test_publish_session_from_scratch_and_nothing_on_failed_check(tmp_path) -> None:
    """The API a convert command uses: any session, its own signatures, published atomically."""
    base = tmp_path / "models" / "scratch"
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        weights = tf.Variable([[1.0], [2.0]], name="w")
        y = tf.matmul(x, weights, name="y")
        session.run(v1.global_variables_initializer())
        signature = v1.saved_model.predict_signature_def({"x": x}, {"y": y})

        def refuse(staging) -> None:
            assert (staging / "saved_model.pb").is_file()
            raise VerificationFailed("not today")

        with pytest.raises(VerificationFailed):
            publish_session(
                session, base, tags=["serve"], signature_def_map={"serving_default": signature}, before_publish=refuse
            )
        assert [p.name for p in base.iterdir()] == []
        published = publish_session(session, base, tags=["serve"], signature_def_map={"serving_default": signature})
    assert published.version == 1 and read(base).meta_graph().signature_keys() == ["serving_default"]
    with load_session(base / "1", ("serve",)) as loaded:
        assert loaded.run("serving_default", {"x": [[1.0, 1.0]]})["y"].tolist() == [[3.0]]


def test_tf2_export_with_an_asset_through_a_session(tmp_path) -> None:
    """TF2 exports hold asset paths in placeholders, which SavedModelBuilder refuses: they become constants."""
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("a\nb\nc\n")

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            initializer = tf.lookup.TextFileInitializer(
                str(vocabulary),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(initializer, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
        def ids(self, words):
            return {"ids": self.table.lookup(words)}

    module = Lookup()
    base = tmp_path / "lookup"
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.ids})
    vocabulary.unlink()  # the new version must take the file from the source version
    with open_editable(base) as editable:
        assert editable.kind == "tf2" and list(editable.asset_files) == ["asset_path_initializer:0"]
        published = publish_editable(editable, base, editable.signature_defs())
    assert (published.path / "assets" / "vocab.txt").read_text() == "a\nb\nc\n"
    words = np.array([b"c", b"a", b"zz"], dtype=object)
    with load_session(published.path, ("serve",)) as loaded:
        assert loaded.run("serving_default", {"words": words})["ids"].tolist() == [2, 0, -1]
    assert run_tf2(load_tf2(published.path), "serving_default", {"words": words})["ids"].tolist() == [2, 0, -1]


REAL_ROUND_TRIP = [
    "saved_model_half_plus_two_tf2_cpu",  # TF2 export: object-based checkpoint, asset placeholder, init op signature
    "tf_half_plus_two_main_op",  # a main op
    "tf_half_plus_two_v2",  # __saved_model_init_op in a TF1 export
    "java_saved_model_using_python",  # five signatures, some without inputs, unknown-rank shapes
    "tfx_trainer_estimator",  # an Estimator export with vocabulary assets
]


@pytest.mark.parametrize("name", REAL_ROUND_TRIP)
def test_real_models_round_trip_through_a_session(model_copy, name: str) -> None:
    from smsurgery.serving.samples import sample_inputs
    from tests.conftest import REALMODELS

    if not (REALMODELS / name).is_dir():
        pytest.skip("shared/realmodels not present")
    base = model_copy(REALMODELS / name)
    model = read(base)
    with open_editable(model) as editable:
        published = publish_editable(editable, base, editable.signature_defs())
    assert read(published.path).meta_graph().signature_keys() == model.meta_graph().signature_keys()
    assert sorted(p.name for p in (published.path / "assets").glob("*")) == sorted(
        p.name for p in (model.path / "assets").glob("*")
    )
    compared = 0
    with load_session(model.path, ("serve",)) as old, load_session(published.path, ("serve",)) as new:
        for key in old.signature_keys():
            view = model.meta_graph().signature(key)
            feeds = sample_inputs(view, batch=2)
            try:
                want = old.run(key, feeds)
            except Exception:  # e.g. tf.Example inputs that samples cannot make
                continue
            got = new.run(key, feeds)
            assert all(np.array_equal(np.asarray(want[k]), np.asarray(got[k])) for k in want), key
            compared += 1
    assert compared or name == "tfx_trainer_estimator"
    assert sorted(load_tf2(published.path).signatures) == model.meta_graph().signature_keys()
