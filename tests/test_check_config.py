"""`smsurgery config write|check`: models.config as TensorFlow Serving's server_core reads it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from smsurgery.serving.models_config import Policy, check_config, write_config
from tests.conftest import REALMODELS, REPO, assert_one_line_error, run_cli

SCHEMAS = REPO / "docs" / "schemas"
HALF = REALMODELS / "saved_model_half_plus_two_cpu"


def _validate(data: dict) -> None:
    """The config report, and each nested check report against check.json."""
    jsonschema.validate(data, json.loads((SCHEMAS / "config_check.json").read_text()))
    check_schema = json.loads((SCHEMAS / "check.json").read_text())
    for model in data["models"]:
        for report in model["checks"]:
            jsonschema.validate(report, check_schema)


def _bases(tmp_path: Path) -> tuple[Path, Path]:
    half = tmp_path / "half"
    shutil.copytree(HALF, half)
    shutil.copytree(HALF / "00000123", half / "124")
    module = tmp_path / "module"
    shutil.copytree(REPO / "fixtures" / "models" / "tf2_module", module)
    return half, module


def test_write_then_check(tmp_path: Path) -> None:
    half, module = _bases(tmp_path)
    target = tmp_path / "models.config"
    result = run_cli("config", "write", half, module, "--name", "half", "--name", "mod", "-o", target)
    assert result.code == 0, result.stderr
    text = target.read_text()
    assert f'base_path: "{half}"' in text and 'model_platform: "tensorflow"' in text
    checked = run_cli("config", "check", target, "--json")
    data = json.loads(checked.stdout)
    _validate(data)
    assert checked.code == 1  # half_plus_two's regress_x2_to_y3 takes floats: a warning
    assert [m["versions"] for m in data["models"]] == [[124], [1]]
    assert data["findings"] == []


def test_policies_and_labels(tmp_path: Path) -> None:
    half, _ = _bases(tmp_path)
    text = write_config([str(half)], [], Policy.parse("specific:123,124"), {"stable": 123, "canary": 124})
    assert "specific" in text and 'key: "canary"' in text
    (tmp_path / "a.config").write_text(text)
    report = check_config(tmp_path / "a.config")
    assert report.models[0].versions == [123, 124] and report.findings == []
    assert "all {" in write_config([str(half)], [], Policy.parse("all"), {})
    assert_one_line_error(run_cli("config", "write", half, "--label", "stable=123"), "stable=123", "124")
    assert_one_line_error(run_cli("config", "write", half, "--policy", "specific:7"), "no version 7")
    assert_one_line_error(run_cli("config", "write", half, "--policy", "newest"), "newest", "specific")
    assert_one_line_error(run_cli("config", "write", half, half), "two models named half")


def test_check_refuses_what_server_core_refuses(tmp_path: Path) -> None:
    half, module = _bases(tmp_path)
    config = tmp_path / "bad.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "a" base_path: "{half}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "a" base_path: "{module}" model_platform: "tensorflow" }}\n'
        '  config { name: "rel" base_path: "models/rel" model_platform: "tensorflow" }\n'
        f'  config {{ name: "noplat" base_path: "{module}" }}\n'
        f'  config {{ name: "torch" base_path: "{module}" model_platform: "pytorch" }}\n'
        f'  config {{ name: "gone" base_path: "{tmp_path / "gone"}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "spec" base_path: "{half}" model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 124 versions: 9 } }\n"
        '    version_labels { key: "old" value: 123 } }\n'
        "}\n"
    )
    result = run_cli("config", "check", config, "--json")
    assert result.code == 3
    found = {(f["code"], f["subject"]) for f in json.loads(result.stdout)["findings"]}
    assert ("SM-CONFIG-DUPLICATE-NAME", "model 'a'") in found
    assert ("SM-CONFIG-RELATIVE-PATH", "model 'rel'") in found
    assert ("SM-CONFIG-PLATFORM", "model 'noplat'") in found
    assert ("SM-CONFIG-PLATFORM", "model 'torch'") in found
    assert ("SM-CONFIG-BASE-MISSING", "model 'gone'") in found
    assert ("SM-CONFIG-POLICY-VERSION", "model 'spec'") in found
    assert ("SM-CONFIG-LABEL", "model 'spec' label 'old'") in found
    rooted = tmp_path / "rooted.config"
    rooted.write_text('model_config_list { config { name: "m" base_path: "module" model_platform: "tensorflow" } }\n')
    assert check_config(rooted, root_dir=str(tmp_path)).findings == []
    markdown = run_cli("config", "check", config, "--format", "markdown")
    assert markdown.code == 3 and "`SM-CONFIG-LABEL`" in markdown.stdout


def test_unparsable_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text('model_config_list {\n  config {\n    name: "m"\n    base_pth: "/x"\n  }\n}\n')
    assert_one_line_error(run_cli("config", "check", config), "models.config:4:5", "base_pth")
    assert_one_line_error(run_cli("config", "check", tmp_path / "missing.config"), "missing.config")
    fifo = tmp_path / "fifo.config"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("config", "check", fifo, timeout=60), "not a regular file")
    assert_one_line_error(run_cli("check", HALF, "--batching", "/dev/zero", timeout=60), "not a regular file")
    (tmp_path / "latin1.config").write_bytes(b'model_config_list { config { name: "\xe9" } }')
    assert_one_line_error(run_cli("config", "check", tmp_path / "latin1.config"), "not UTF-8")


@pytest.mark.slow
def test_written_config_parses_with_tensorflow_serving(tmp_path: Path) -> None:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    half, module = _bases(tmp_path)
    text = write_config([str(half), str(module)], [], Policy.parse("latest"), {})
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["half", "module"]
    labelled = write_config([str(half)], ["h"], Policy.parse("all"), {"stable": 124})
    config = text_format.Parse(labelled, model_server_config_pb2.ModelServerConfig())
    assert config.model_config_list.config[0].version_labels["stable"] == 124
    assert config.model_config_list.config[0].model_version_policy.HasField("all")
