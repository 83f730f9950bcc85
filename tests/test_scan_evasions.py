"""Issue 11, defect 1: models that write files when served, which `scan` used to call clean.

Each model is real: built with TensorFlow (functions traced by `tf.function`,
then graph-def surgery with TensorFlow's own protos where no Python API
writes such a graph), loaded with the TF1 loader as Serving does, and run;
the test sees the file appear. Then `smsurgery scan --json` must exit 3 and
name the op, its function and its group, in output valid against
docs/schemas/scan.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "scan.json").read_text())
FLOAT = 1


def _tf() -> Any:
    from smsurgery.graph.session import import_tf

    return import_tf()


def writer_function(name: str, target: Path) -> Any:
    """A FunctionDef, traced by TensorFlow, that writes `target` and returns 1.0."""
    tf = _tf()

    @tf.function(input_signature=[])
    def write() -> Any:
        tf.io.write_file(str(target), "pwned")
        return tf.constant(1.0)

    fdef = type(write.get_concrete_function().function_def)()
    fdef.CopyFrom(write.get_concrete_function().function_def)
    fdef.signature.name = name
    return fdef


def graph_with_input() -> Any:
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.placeholder(tf.float32, [None], name="x")
    return graph.as_graph_def()


def call(graph_def: Any, name: str, function: str, op: str = "StatefulPartitionedCall") -> Any:
    """A call node with no inputs and one float output."""
    node = graph_def.node.add(name=name, op=op)
    if op.endswith("PartitionedCall"):
        node.attr["Tin"].list.SetInParent()
        node.attr["Tout"].list.type.append(FLOAT)
        node.attr["f"].func.name = function
    return node


def forwarder(library: Any, name: str, attr: str, body: Callable[[Any], str]) -> Any:
    """A function with a func-typed attr `attr`; `body` adds its nodes and names its output."""
    fdef = library.function.add()
    fdef.signature.name = name
    fdef.signature.attr.add(name=attr, type="func")
    fdef.signature.is_stateful = True
    fdef.signature.output_arg.add(name="out", type=FLOAT)
    fdef.ret["out"] = body(fdef)
    return fdef


def placeholder_call(fdef: Any, node_name: str, placeholder: str) -> str:
    node = fdef.node_def.add(name=node_name, op="StatefulPartitionedCall")
    node.attr["f"].placeholder = placeholder
    node.attr["Tin"].list.SetInParent()
    node.attr["Tout"].list.type.append(FLOAT)
    return f"{node_name}:output:0"


def export(folder: Path, graph_def: Any, *, output: str = "y") -> None:
    """A SavedModel of `graph_def` with signature serving_default: x -> `output`."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta = model.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.graph_def.CopyFrom(graph_def)
    signature = meta.signature_def["serving_default"]
    signature.method_name = "tensorflow/serving/predict"
    signature.inputs["x"].name, signature.inputs["x"].dtype = "x:0", FLOAT
    signature.outputs["y"].name, signature.outputs["y"].dtype = f"{output}:0", FLOAT
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())


def served_after(graph_def: Any, node: str) -> None:
    """Signature output y = x, with a control dependency on `node`."""
    y = graph_def.node.add(name="y", op="Identity", input=["x", f"^{node}"])
    y.attr["T"].type = FLOAT


def tf1_run(folder: Path, fetch: str = "y:0") -> Any:
    """Load with the TF1 loader, as Serving does, and run `fetch`."""
    tf = _tf()
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        tf.compat.v1.saved_model.loader.load(session, ["serve"], str(folder))
        return session.run(fetch, {"x:0": [1.0]})


def scan_json(folder: Path) -> dict[str, Any]:
    result = run_cli("scan", folder, "--json")
    assert result.code == 3, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    return report["meta_graphs"][0]


def ops_at(findings: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(f["op"], f["function"]) for f in findings}


def test_placeholder_bound_in_a_name_attr_list(tmp_path: Path) -> None:
    """outer calls forwarder with {inner: writer}; forwarder's body calls {placeholder: inner}."""
    target, graph = tmp_path / "pwned.txt", graph_with_input()
    graph.library.function.append(writer_function("writer", target))
    forwarder(graph.library, "forwarder", "inner", lambda f: placeholder_call(f, "call", "inner"))
    call(graph, "outer", "forwarder").attr["f"].func.attr["inner"].func.name = "writer"
    served_after(graph, "outer")
    export(tmp_path / "m" / "1", graph)
    tf1_run(tmp_path / "m" / "1")
    assert target.read_text() == "pwned"
    meta = scan_json(tmp_path / "m" / "1")
    assert ops_at(meta["signatures"]["serving_default"]) == {("WriteFile", "writer")}


def test_placeholder_resolved_two_calls_away(tmp_path: Path) -> None:
    """outer (op fwd1, attr inner=writer) -> fwd1 calls fwd2 with g={placeholder inner} -> fwd2 calls g.

    The same chain with the outer binding in a NameAttrList attr does not run
    in TensorFlow 2.21 ("Function writer is not defined"): the runtime does
    not carry that function two calls down. The property test covers it.
    """
    target, graph = tmp_path / "pwned.txt", graph_with_input()
    graph.library.function.append(writer_function("writer", target))
    forwarder(graph.library, "fwd2", "g", lambda f: placeholder_call(f, "call", "g"))

    def pass_on(fdef: Any) -> str:
        fdef.node_def.add(name="pass_on", op="fwd2").attr["g"].placeholder = "inner"
        return "pass_on:out:0"

    forwarder(graph.library, "fwd1", "inner", pass_on)
    call(graph, "outer", "fwd1", op="fwd1").attr["inner"].func.name = "writer"
    served_after(graph, "outer")
    export(tmp_path / "m" / "1", graph)
    tf1_run(tmp_path / "m" / "1")
    assert target.read_text() == "pwned"
    meta = scan_json(tmp_path / "m" / "1")
    assert ops_at(meta["signatures"]["serving_default"]) == {("WriteFile", "writer")}


def test_an_unreached_node_that_calls_a_function_is_walked(tmp_path: Path) -> None:
    """No signature reaches `stray_call`, but a TF1 caller can run it by name: reported under elsewhere."""
    target, graph = tmp_path / "pwned.txt", graph_with_input()
    graph.library.function.append(writer_function("writer", target))
    call(graph, "stray_call", "writer")
    graph.node.add(name="y", op="Identity", input=["x"]).attr["T"].type = FLOAT
    export(tmp_path / "m" / "1", graph)
    tf1_run(tmp_path / "m" / "1")
    assert not target.exists()  # the signature itself is clean...
    tf1_run(tmp_path / "m" / "1", fetch="stray_call:0")
    assert target.read_text() == "pwned"  # ...but the node runs by name
    meta = scan_json(tmp_path / "m" / "1")
    assert meta["signatures"]["serving_default"] == []
    assert ops_at(meta["elsewhere"]) == {("WriteFile", "writer")}


def test_a_registered_gradient_function_is_walked(tmp_path: Path) -> None:
    """SymbolicGradient of an identity function runs the gradient the library registers for it."""
    target, graph = tmp_path / "pwned.txt", graph_with_input()
    graph.library.function.append(writer_function("writer", target))
    forward = graph.library.function.add()
    forward.signature.name = "fwd"
    forward.signature.input_arg.add(name="a", type=FLOAT)
    forward.signature.output_arg.add(name="b", type=FLOAT)
    forward.node_def.add(name="id", op="Identity", input=["a"]).attr["T"].type = FLOAT
    forward.ret["b"] = "id:output:0"
    grad = graph.library.function.add()
    grad.signature.name = "fwd_grad"
    grad.signature.is_stateful = True
    grad.signature.input_arg.add(name="a", type=FLOAT)
    grad.signature.input_arg.add(name="dy", type=FLOAT)
    grad.signature.output_arg.add(name="da", type=FLOAT)
    grad.node_def.append(call(graph_with_input(), "w", "writer"))
    grad.node_def.add(name="id", op="Identity", input=["dy", "^w"]).attr["T"].type = FLOAT
    grad.ret["da"] = "id:output:0"
    graph.library.gradient.add(function_name="fwd", gradient_func="fwd_grad")
    node = graph.node.add(name="grad", op="SymbolicGradient", input=["x", "x"])
    node.attr["f"].func.name = "fwd"
    node.attr["Tin"].list.type.extend([FLOAT, FLOAT])
    node.attr["Tout"].list.type.append(FLOAT)
    graph.node.add(name="y", op="Identity", input=["grad"]).attr["T"].type = FLOAT
    export(tmp_path / "m" / "1", graph)
    tf1_run(tmp_path / "m" / "1")
    assert target.read_text() == "pwned"
    meta = scan_json(tmp_path / "m" / "1")
    assert ops_at(meta["signatures"]["serving_default"]) == {("WriteFile", "writer")}


def _dataset_graph(target: Path) -> bytes:
    """A serialized tf.data graph whose map function writes `target`."""
    tf = _tf()

    def make() -> Any:
        dataset = tf.data.Dataset.range(1).map(lambda i: (tf.io.write_file(str(target), "pwned"), i)[1])
        return tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor)

    return tf.function(make)().numpy()


def test_a_graph_computed_at_run_time_is_opaque_code(tmp_path: Path) -> None:
    """DatasetFromGraph of a string computed from the request: scan cannot read it, so it says so."""
    tf = _tf()
    target = tmp_path / "pwned.txt"
    serialized = _dataset_graph(target)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        hidden = tf.constant(serialized, name="hidden_graph")
        computed = tf.strings.substr(tf.strings.join([hidden, tf.strings.as_string(tf.size(x))]), 0, len(serialized))
        variant = tf.raw_ops.DatasetFromGraph(graph_def=computed, name="from_graph")
        dataset = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.int64))
        tf.identity(x + tf.cast(dataset.get_single_element(), tf.float32), name="y")
    export(tmp_path / "m" / "1", graph.as_graph_def())
    tf1_run(tmp_path / "m" / "1")
    assert target.read_text() == "pwned"
    [finding] = scan_json(tmp_path / "m" / "1")["signatures"]["serving_default"]
    assert (finding["op"], finding["category"], finding["node"]) == ("DatasetFromGraph", "code execution", "from_graph")


def test_a_graph_in_a_const_is_parsed_and_scanned(tmp_path: Path) -> None:
    """TF2: DatasetFromGraph of a Const inside the signature function; the WriteFile is in the embedded graph.

    TensorFlow 2.21's constant folding fails on this route under the TF1
    loader (it cannot fold a dataset variant), so the proof that the
    embedded graph writes runs it eagerly, as a `tf.saved_model.load` caller
    could; scan reports it either way.
    """
    tf = _tf()
    target = tmp_path / "pwned.txt"
    serialized = _dataset_graph(target)
    eager = tf.data.experimental.from_variant(
        tf.raw_ops.DatasetFromGraph(graph_def=serialized), tf.TensorSpec([], tf.int64)
    )
    assert list(eager.as_numpy_iterator()) == [0]
    assert target.read_text() == "pwned"
    target.unlink()

    class Hidden(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x: Any) -> dict[str, Any]:
            variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.constant(serialized))
            dataset = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.int64))
            return {"y": x + tf.cast(dataset.get_single_element(), tf.float32)}

    module = Hidden()
    tf.saved_model.save(module, str(tmp_path / "m" / "1"), signatures={"serving_default": module.serve})
    [finding] = scan_json(tmp_path / "m" / "1")["signatures"]["serving_default"]
    assert finding["op"] == "WriteFile" and "map_lambda" in finding["function"]
    assert finding["embedded_in"].endswith("/DatasetFromGraph") and "serve" in finding["embedded_in"]


def test_tf1_print_is_reported(tmp_path: Path) -> None:
    """`tf.compat.v1.Print` (op Print, not PrintV2) writes to the server's stderr."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        tf.identity(tf.compat.v1.Print(x, [x], message="leaked-by-print", name="leak"), name="y")
    export(tmp_path / "m" / "1", graph.as_graph_def())
    folder = str(tmp_path / "m" / "1")
    code = f"from tests.test_scan_evasions import tf1_run; from pathlib import Path; tf1_run(Path({folder!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert "leaked-by-print" in run.stderr
    [finding] = scan_json(tmp_path / "m" / "1")["signatures"]["serving_default"]
    assert (finding["op"], finding["category"], finding["node"]) == ("Print", "output", "leak")


def test_an_op_added_from_the_registry_pass_is_reported(tmp_path: Path) -> None:
    """FixedUnigramCandidateSampler with vocab_file opens a server path (here a missing one: NotFound)."""
    tf = _tf()
    vocab = tmp_path / "counts.csv"
    vocab.write_text("a,1\nb,2\n")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        sampled = tf.raw_ops.FixedUnigramCandidateSampler(
            true_classes=tf.constant([[0]], tf.int64), num_true=1, num_sampled=1, unique=True, range_max=2,
            vocab_file=str(vocab), name="sampler",
        )[0]  # fmt: skip
        tf.identity(x + tf.cast(tf.reduce_sum(sampled) * 0, tf.float32), name="y")
    export(tmp_path / "m" / "1", graph.as_graph_def())
    tf1_run(tmp_path / "m" / "1")
    vocab.unlink()
    with pytest.raises(tf.errors.NotFoundError, match=r"counts\.csv"):
        tf1_run(tmp_path / "m" / "1")  # it does read the file
    [finding] = scan_json(tmp_path / "m" / "1")["signatures"]["serving_default"]
    assert (finding["op"], finding["category"]) == ("FixedUnigramCandidateSampler", "file system")
    assert str(vocab) in finding["reason"]
