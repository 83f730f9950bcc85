"""The JSON schema files under docs/schemas are valid JSON Schema, one per `--json` shape.

Outputs are validated against them wherever a test runs the CLI with
`--json` (tests/conftest.py `run_cli`); this module checks the files and a
few outputs that no other test asks for as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import FIXTURE_MODELS, SCHEMAS, run_cli, schema_file


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_schema_file_is_valid_json_schema(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    name = path.stem
    const = schema["properties"]["schema"]["const"]
    assert schema_file(const) == path and const == f"smsurgery.{name}/1"


def test_show_json_of_every_fixture_matches_its_schema() -> None:
    for model in sorted(FIXTURE_MODELS.iterdir()):
        result = run_cli("show", model, "--json", "--ops")
        assert result.code == 0, result.stderr
