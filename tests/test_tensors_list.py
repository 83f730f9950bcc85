"""`smsurgery tensors`: TF-free listing of a signature's tensors, inside functions too."""

from __future__ import annotations

import json

import jsonschema
import pytest

from smsurgery.core.graphmodel import GraphModel
from smsurgery.core.model import read
from smsurgery.core.tensor_index import layer_output, resolve, signature_tensors
from tests.conftest import FIXTURE_MODELS, REALMODELS, REPO, assert_one_line_error, real_model_names, run_cli

SCHEMA = json.loads((REPO / "docs" / "schemas" / "tensors.json").read_text())
POOL = "__inference___call___691::image_classifier_1/pool_1/Mean:output:0"


def test_lists_function_tensors_with_layers_and_validates_against_schema() -> None:
    result = run_cli("tensors", FIXTURE_MODELS / "keras_image", "*pool*Mean*", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    entries = {e["address"]: e for e in data["tensors"]}
    assert entries[POOL]["layer"] == "pool" and entries[POOL]["shape"] == [-1, 4]
    assert entries[POOL]["dtype"] == "DT_FLOAT" and entries[POOL]["op"] == "Mean"
    assert data["layers"] == ["conv", "pool", "probs"]


def test_op_filter_and_other_signature_on_a_tf_module() -> None:
    result = run_cli("tensors", FIXTURE_MODELS / "tf2_module", "--op", "MatMul", "-s", "serving_default", "--json")
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert {e["op"] for e in data["tensors"]} == {"MatMul"} and data["count"] == 2


def test_tensors_does_not_import_tensorflow() -> None:
    code = (
        "import sys; from smsurgery.cli.app import main\n"
        "try: main(['tensors', sys.argv[1]])\n"
        "except SystemExit: pass\n"
        "assert 'tensorflow.python' not in sys.modules and 'numpy' not in sys.modules, 'TF imported'"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, str(FIXTURE_MODELS / "keras_image")], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_pattern_matching_nothing_names_the_closest() -> None:
    result = run_cli("tensors", FIXTURE_MODELS / "keras_image", "global_average_pooling2d/Mean")
    assert_one_line_error(result, "matches no tensor", "closest", "pool_1/Mean")


def test_unknown_signature_lists_the_signatures() -> None:
    assert_one_line_error(run_cli("tensors", FIXTURE_MODELS / "keras_image", "-s", "nope"), "nope", "serve")


def test_resolve_addresses_bare_names_and_layers() -> None:
    found = signature_tensors(GraphModel(read(FIXTURE_MODELS / "keras_image").meta_graph().proto))
    assert resolve(found, POOL).address == POOL
    assert resolve(found, "image_classifier_1/pool_1/Mean").address == POOL
    assert resolve(found, "pool_1/Mean:output:0").address == POOL
    assert resolve(found, "pool_1/Mean").address == POOL
    assert layer_output(found, "pool").address == POOL
    assert layer_output(found, "conv").address.endswith("conv_1/Relu:activations:0")
    assert resolve(found, "serving_default_image:0").ref.scope == ""


@pytest.mark.parametrize("name", real_model_names())
def test_every_real_model_lists_its_tensors(name: str) -> None:
    """Proto reads only: models no loader can load (custom ops) list too."""
    meta = read(REALMODELS / name).meta_graph(tuple(read(REALMODELS / name).tag_sets[0])).proto
    for key in sorted(k for k in meta.signature_def if k != "__saved_model_init_op"):
        found = signature_tensors(GraphModel(meta), key)
        assert found.entries, key
        for entry in found.entries[:: max(1, len(found.entries) // 50)]:  # a sample: jsonschema is slow
            jsonschema.validate(entry.to_json(), SCHEMA["properties"]["tensors"]["items"])
