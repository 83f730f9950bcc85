"""`smsurgery scan`: risky ops per signature and init op, and read commands never run the graph.

The models with hostile ops are built here with real TensorFlow: a TF1 export
whose main op writes a file, one whose signature calls a Python function,
and a TF2 export whose signature calls `tf.py_function` and `tf.print`
inside a while loop. The loaders prove each hostile op is real (the file does
get written when TensorFlow loads the model); `show`, `diff`, `request` and
`scan` prove they never run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsurgery.core import protos
from smsurgery.core.errors import SignatureNotFound
from smsurgery.inspect.scan import CHECKPOINT_OPS, DENYLIST, SAVED_MODEL_CLI_DENYLIST, scan, scan_meta_graph
from tests.conftest import FIXTURE_MODELS, REALMODELS, assert_one_line_error, real_model_names, run_cli

PWNED = b"pwned"


def _tf() -> Any:
    from smsurgery.graph.session import import_tf

    return import_tf()


def _tf1_export(folder: Path, build, *, main_op: bool = False) -> None:
    """Export a TF1 graph (from `build(tf)`, which returns (inputs, outputs, extra)) with SavedModelBuilder."""
    tf = _tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        inputs, outputs, init = build(tf)
        session.run(v1.global_variables_initializer())
        signature = v1.saved_model.signature_def_utils.predict_signature_def(inputs=inputs, outputs=outputs)
        builder = v1.saved_model.Builder(str(folder))
        builder.add_meta_graph_and_variables(
            session,
            ["serve"],
            signature_def_map={"serving_default": signature},
            main_op=init if main_op else None,
            strip_default_attrs=True,
        )
        builder.save()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scan-models")
    target = root / "pwned.txt"
    built: dict[str, Path] = {"root": root, "target": target}

    def writes_file(tf: Any) -> tuple[dict, dict, Any]:
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        init = tf.io.write_file(str(target), PWNED, name="write_on_load")
        return {"x": x}, {"y": tf.identity(x * 2.0, name="y")}, init

    built["init_writes"] = root / "init_writes" / "1"
    _tf1_export(built["init_writes"], writes_file, main_op=True)

    def py_func(tf: Any) -> tuple[dict, dict, Any]:
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        y = tf.compat.v1.py_func(lambda a: a * 2, [x], tf.float32, name="python_code")
        stray = tf.io.write_file(str(target), PWNED, name="stray_write")  # reached by nothing
        reader = tf.io.read_file("/etc/hostname", name="control_read")
        with tf.control_dependencies([reader]):
            z = tf.identity(x, name="z")
        del stray
        # A table filled from a server path that is not an asset: line 0 of a file, served.
        table = tf.raw_ops.HashTableV2(key_dtype=tf.int64, value_dtype=tf.string, shared_name="leak")
        init = tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=table, filename=tf.constant("/etc/hostname"), key_index=-2, value_index=-1, name="leak_init"
        )
        with tf.control_dependencies([init]):
            line = tf.raw_ops.LookupTableFindV2(table_handle=table, keys=tf.constant([0], tf.int64), default_value="")
        outputs = {"y": tf.identity(y, name="y"), "z": z, "line": tf.identity(line, name="line")}
        return {"x": x}, outputs, None

    built["py_func"] = root / "py_func" / "1"
    _tf1_export(built["py_func"], py_func)

    tf = _tf()

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x: Any) -> dict[str, Any]:
            doubled = tf.py_function(lambda a: a * 2, [x], tf.float32)

            def body(i: Any, acc: Any) -> tuple[Any, Any]:
                tf.print("step", i)
                return i + 1, acc + 1.0

            _i, total = tf.while_loop(lambda i, _acc: i < 2, body, [tf.constant(0), tf.constant(0.0)])
            return {"y": doubled + total}

    module = Module()
    built["tf2_py_function"] = root / "tf2_py_function" / "1"
    tf.saved_model.save(module, str(built["tf2_py_function"]), signatures={"serving_default": module.serve})

    vocab = root / "vocab.txt"
    vocab.write_text("a\nb\nc\n")

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            index = tf.lookup.TextFileIndex
            initializer = tf.lookup.TextFileInitializer(
                str(vocab), tf.string, index.WHOLE_LINE, tf.int64, index.LINE_NUMBER
            )
            self.table = tf.lookup.StaticHashTable(initializer, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, words: Any) -> dict[str, Any]:
            return {"ids": self.table.lookup(words)}

    lookup = Lookup()
    built["tf2_vocab"] = root / "tf2_vocab" / "1"
    tf.saved_model.save(lookup, str(built["tf2_vocab"]), signatures={"serving_default": lookup.serve})
    return built


def test_scan_reports_an_init_op_that_writes_a_file_and_exits_3(models: dict[str, Path]) -> None:
    result = run_cli("scan", models["init_writes"], "--json")
    assert result.code == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "smsurgery.scan/1" and report["clean"] is False and report["count"] == 1
    meta = report["meta_graphs"][0]
    assert meta["signatures"] == {"serving_default": []}
    [finding] = meta["init"]["saved_model_main_op"]
    assert (finding["op"], finding["category"], finding["node"]) == ("WriteFile", "file system", "write_on_load")
    assert meta["saver_ops"] == []  # no variables, so no saver


def test_read_commands_never_run_the_graph_but_the_loader_does(models: dict[str, Path]) -> None:
    """The init op writes a file when TensorFlow loads the model; show/diff/request/scan never do."""
    target: Path = models["target"]
    model = models["init_writes"]
    assert run_cli("show", model, "--ops").code == 0
    assert run_cli("scan", model).code == 3
    for command, args in (("diff", (model, model)), ("request", (model,))):
        if run_cli(command, "--help").code == 0:  # the command exists in this build
            result = run_cli(command, *args)
            assert result.code in (0, 1), (command, result.stderr)  # it did read the model
    assert not target.exists(), "a read command ran the model's init op"

    tf = _tf()
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        tf.compat.v1.saved_model.loader.load(session, ["serve"], str(model))
    assert target.read_bytes() == PWNED
    target.unlink()


def test_scan_follows_signatures_control_inputs_and_reports_unreached_ops(models: dict[str, Path]) -> None:
    report = scan(models["py_func"])
    meta = report["meta_graphs"][0]
    ops = {(f["op"], f["node"]) for f in meta["signatures"]["serving_default"]}
    assert ops == {
        ("PyFunc", "python_code"),
        ("ReadFile", "control_read"),
        ("InitializeTableFromTextFileV2", "leak_init"),
    }
    categories = {f["op"]: f["category"] for f in meta["signatures"]["serving_default"]}
    assert categories["PyFunc"] == "code execution" and categories["ReadFile"] == "file system"
    assert [(f["op"], f["node"]) for f in meta["elsewhere"]] == [("WriteFile", "stray_write")]
    assert report["count"] == 4


def test_tables_filled_from_the_models_own_assets_are_expected(models: dict[str, Path]) -> None:
    """TF2 keeps the vocabulary path in a variable assigned from the asset tensor: traced, not reported."""
    report = scan(models["tf2_vocab"])
    assert report["clean"], report
    assert report["meta_graphs"][0]["init"]["__saved_model_init_op"] == []


def test_scan_finds_ops_inside_called_functions_and_loop_bodies(models: dict[str, Path]) -> None:
    """TF2: the signature is a StatefulPartitionedCall; py_function and tf.print sit in library functions."""
    result = run_cli("scan", models["tf2_py_function"], "--json")
    assert result.code == 3, result.stderr
    findings = json.loads(result.stdout)["meta_graphs"][0]["signatures"]["serving_default"]
    by_op = {f["op"]: f for f in findings}
    assert set(by_op) == {"EagerPyFunc", "PrintV2"}
    assert by_op["EagerPyFunc"]["category"] == "code execution"
    assert by_op["PrintV2"]["category"] == "output"
    assert all(f["function"] for f in findings), "found inside library functions, not the graph"
    assert "body" in by_op["PrintV2"]["function"]


def test_scan_table_renders_every_group(models: dict[str, Path]) -> None:
    result = run_cli("scan", models["py_func"])
    assert result.code == 3
    for text in ("signature 'serving_default'", "PyFunc", "ReadFile", "elsewhere", "stray_write"):
        assert text in result.stdout, text
    assert "4 risky op(s) found" in result.stderr


def test_scan_is_clean_on_every_fixture_and_real_model() -> None:
    """Saver ops are expected; vocabulary tables read from assets/ are expected (tf1_lookup, tfx_*)."""
    names = [FIXTURE_MODELS / n for n in sorted(p.name for p in FIXTURE_MODELS.iterdir())]
    names += [REALMODELS / n for n in real_model_names()]
    for path in names:
        report = scan(path)
        assert report["clean"], (path.name, report)
        for meta in report["meta_graphs"]:
            assert set(meta["saver_ops"]) <= CHECKPOINT_OPS


def test_scan_options_and_errors(tmp_path: Path) -> None:
    report = scan(FIXTURE_MODELS / "tf2_module", signature="double")
    assert list(report["meta_graphs"][0]["signatures"]) == ["double"]
    assert report["meta_graphs"][0]["elsewhere"] == []
    with pytest.raises(SignatureNotFound, match="serving_default"):
        scan(FIXTURE_MODELS / "tf2_module", signature="nope")
    assert_one_line_error(run_cli("scan", FIXTURE_MODELS / "tf2_module", "--tags", "gpu"), "no meta graph", "serve")
    assert_one_line_error(run_cli("scan", tmp_path / "missing"), "no such file")
    clean = run_cli("scan", FIXTURE_MODELS / "tf1_lookup", "--version", "1")
    assert clean.code == 0 and "no risky ops found" in clean.stderr


def test_scan_never_imports_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.inspect.scan import scan; "
        f"r = scan({str(FIXTURE_MODELS / 'tf2_module')!r}); "
        "assert r['clean']; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_denylist_covers_saved_model_cli_and_the_issue() -> None:
    assert set(DENYLIST) >= SAVED_MODEL_CLI_DENYLIST
    assert {"ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc"} <= set(DENYLIST)
    assert {"DebugIdentity", "ImmutableConst", "SaveV2", "RestoreV2"} <= set(DENYLIST)
    # Issue 11: the TF1 print op, graphs in tensors, readers, remote and collective ops.
    assert {"Print", "DatasetFromGraph", "DeserializeIterator", "ReaderReadV2", "RemoteCall", "DumpTensor"} <= set(
        DENYLIST
    )
    assert {"LoadAndRemapMatrix", "WriteFile", "MatchingFiles", "DebugIdentityV3", "XlaCallModule"} <= set(DENYLIST)


# --- property-based: random graphs, with cycles, dangling names and functions calling functions --


_OPS = ["Identity", "Const", "WriteFile", "ReadFile", "PyFunc", "SaveV2", "InitializeTableFromTextFileV2", "NoOp"]


@st.composite
def meta_graphs(draw: Any) -> tuple[Any, set[tuple[str | None, str]]]:
    """A random MetaGraphDef and the risky nodes that its signature must report."""
    meta = protos.meta_graph_class()()
    functions = [f"fn{i}" for i in range(draw(st.integers(0, 3)))]
    names = [f"n{i}" for i in range(draw(st.integers(1, 12)))]
    refs = st.sampled_from([*names, "missing", "^n0", "n1:3", "n0:out:0", ""])
    for name in names:
        node = meta.graph_def.node.add(
            name=name, op=draw(st.sampled_from([*_OPS, *functions, "StatefulPartitionedCall"]))
        )
        node.input.extend(draw(st.lists(refs, max_size=3)))
        if node.op == "StatefulPartitionedCall":
            node.attr["f"].func.name = draw(st.sampled_from([*functions, "no_such_function"]))
    for function in functions:
        fdef = meta.graph_def.library.function.add()
        fdef.signature.name = function
        fdef.signature.input_arg.add(name="arg0")
        for i in range(draw(st.integers(0, 4))):
            node = fdef.node_def.add(name=f"{function}_{i}", op=draw(st.sampled_from([*_OPS, *functions])))
            node.input.extend(draw(st.lists(st.sampled_from(["arg0", f"{function}_0:output:0", "nope"]), max_size=2)))
            if draw(st.booleans()):
                node.attr["body"].func.name = draw(st.sampled_from(functions))
    signature = meta.signature_def["serving_default"]
    for k, root in enumerate(draw(st.lists(refs, min_size=1, max_size=3))):
        signature.outputs[f"o{k}"].name = root
    if draw(st.booleans()):
        meta.collection_def["saved_model_main_op"].node_list.value.append(draw(refs))
    if draw(st.booleans()):
        meta.collection_def["asset_filepaths"].node_list.value.append(draw(refs))
    meta.saver_def.restore_op_name = draw(refs)
    return meta


@settings(max_examples=200, deadline=None, database=None)
@given(meta=meta_graphs())
def test_scan_of_random_graphs_never_fails_and_misses_no_risky_node(meta: Any) -> None:
    """Every risky node of the graph lands in some group: reached by a root, or elsewhere."""
    result = scan_meta_graph(meta)
    groups = [*result.signatures.values(), *result.init.values(), result.elsewhere]
    found = {(f.function, f.node) for group in groups for f in group}
    skip = CHECKPOINT_OPS | {"InitializeTableFromTextFileV2"}
    risky = {(None, n.name) for n in meta.graph_def.node if n.op in DENYLIST and n.op not in skip}
    assert risky <= found
    assert result.to_json()["count"] == result.count


def test_a_risky_op_behind_the_savers_restore_is_reported() -> None:
    """Loaders run `saver_def.restore_op_name` on load: only checkpoint ops are expected behind it."""
    from smsurgery.core.model import read

    meta = read(FIXTURE_MODELS / "tf1_linear").proto.meta_graphs[0]
    clean = scan_meta_graph(meta)
    assert clean.count == 0 and clean.init["saver_def"] == []
    meta.graph_def.node.add(name="on_restore", op="WriteFile")
    restore = next(n for n in meta.graph_def.node if n.name == meta.saver_def.restore_op_name)
    restore.input.append("^on_restore")
    result = scan_meta_graph(meta)
    assert [(f.op, f.node) for f in result.init["saver_def"]] == [("WriteFile", "on_restore")]
    assert result.count == 1 and "RestoreV2" in result.saver_ops


def test_scan_json_matches_its_schema_on_every_fixture_and_real_model() -> None:
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "scan.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    names = [FIXTURE_MODELS / n for n in sorted(p.name for p in FIXTURE_MODELS.iterdir())]
    for path in [*names, *(REALMODELS / n for n in real_model_names())]:
        jsonschema.validate(scan(path), schema)
