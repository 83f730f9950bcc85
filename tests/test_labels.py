"""`labels`: top-k class names and scores after a score output, on TF1 and TF2 exports.

A TF1 export (session route) and a Keras 3 export (function route) get a
`labels` signature whose `classes` (DT_STRING) and `scores` equal top-k of
the original scores with the labels looked up, under both loaders; the
labels file is in the new version's assets; with `example-input --method
classify` on top, a REST `:classify` body answers `[[label, score], ...]`
through `run`. Bad labels files and --top-k values exit 2 and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import keras
import numpy as np
import pytest

from smsurgery import read
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from tests.conftest import REPO, assert_one_line_error, run_cli, tree_digest

pytestmark = pytest.mark.slow
tf = import_tf()
v1 = tf.compat.v1
SCHEMA = json.loads((REPO / "docs" / "schemas" / "labels.json").read_text())
NAMES = ["cat", "dog", "bird", "fish"]


def tf1_scores(path: Path) -> None:
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", initializer=tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4) % 5 - 2))
        scores = tf.nn.softmax(tf.matmul(x, w), name="probabilities")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path / "1"))
        signature = v1.saved_model.predict_signature_def({"x": x}, {"probabilities": scores})
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()


def keras_scores(path: Path) -> None:
    keras.utils.set_random_seed(5)
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Dense(6)(inputs)))
    model.export(str(path / "1"), format="tf_saved_model", verbose=False)


def expected(scores: np.ndarray, k: int) -> tuple[list[list[bytes]], np.ndarray]:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[NAMES[i].encode() for i in row] for row in order], np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize(("build", "route"), [(tf1_scores, "session"), (keras_scores, "function")])
def test_labels_then_classify_on_both_routes(tmp_path: Path, build, route: str) -> None:
    base = tmp_path / "model"
    build(base)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    result = run_cli("labels", base, "--file", labels, "--top-k", "3", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert (report["route"], report["top_k"], report["classes"]) == (route, 3, 4)
    assert (base / "2" / "assets" / "labels.txt").read_bytes() == labels.read_bytes()
    view = read(base / "2").meta_graph().signature("labels")
    assert (view.output("classes").dtype, view.output("scores").dtype) == ("DT_STRING", "DT_FLOAT")
    x = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.25], [-1.0, -2.0, 3.0]], np.float32)
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as new:
        original = next(iter(old.run("serving_default", {"x": x}).values()))
        tf1 = new.run("labels", {"x": x})
    tf2 = run_tf2(load_tf2(base / "2"), "labels", {"x": x})
    classes, scores = expected(original, 3)
    for got in (tf1, tf2):
        assert got["classes"].tolist() == classes
        assert np.allclose(got["scores"], scores, rtol=1e-6)
    assert run_cli("example-input", base, "-s", "labels", "--method", "classify").code == 0
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"signature_name": "classify", "examples": [{"x": row} for row in x.tolist()]}))
    answer = run_cli("run", base / "3", "-b", body)
    assert answer.code == 0, answer.stderr
    results = json.loads(answer.stdout)["results"]
    assert [[label for label, _ in row] for row in results] == [[c.decode() for c in row] for row in classes]
    assert np.allclose([[score for _, score in row] for row in results], scores, rtol=1e-6)


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        (b"cat\ndog\n", (), ("has 2 lines", "scores 4 classes")),
        (b"", (), ("is empty",)),
        (b"\n\n", (), ("is empty",)),
        (b"cat\n\xff\xfe\nbird\nfish\n", (), ("is not UTF-8",)),
        (b"cat\ndog\nbird\nfish\n", ("--top-k", "5"), ("--top-k 5", "the 4 classes")),
        (b"cat\ndog\nbird\nfish\n", ("--top-k", "0"), ("--top-k 0",)),
        (b"cat\ndog\nbird\nfish\n", ("--output", "nope"), ("nope",)),
        (b"cat\ndog\nbird\nfish\n", ("--as", "serving_default"), ("'serving_default' already exists",)),
    ],
)
def test_bad_labels_exit_2_and_write_nothing(tmp_path: Path, content: bytes, args, words) -> None:
    base = tmp_path / "model"
    tf1_scores(base)
    labels = tmp_path / "labels.txt"
    labels.write_bytes(content)
    before = tree_digest(base)
    assert_one_line_error(run_cli("labels", base, "--file", labels, *args), *words)
    assert tree_digest(base) == before
