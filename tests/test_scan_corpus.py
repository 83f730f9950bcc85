"""The scan-evasion corpus (tests/hostile/scan_corpus.py), one model per class, through the CLI.

Each case is a SavedModel written from protos (no TensorFlow): `smsurgery
scan --json` must exit 3, match docs/schemas/scan.json, and report the one
risky op (node `risky`) in the group its entry implies, and nothing else.
The real-TensorFlow proofs that such models do run their hidden op are in
tests/test_scan_evasions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import run_cli
from tests.hostile.scan_corpus import CASES, EMBEDDED_HOME, ENTRIES, LINKS, ScanCase, make_scan_case

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "scan.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scan_reports_the_hidden_op(tmp_path: Path, case: ScanCase) -> None:
    result = run_cli("scan", make_scan_case(case, tmp_path), "--json")
    assert result.code == 3, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["count"] == 1, report
    [meta] = report["meta_graphs"]
    kind, key = case.group
    findings = meta[kind] if key is None else meta[kind][key]
    [finding] = findings
    assert (finding["op"], finding["node"]) == (case.op, "risky")
    assert (finding["embedded_in"] is not None) == bool(EMBEDDED_HOME & set(case.links))


def test_corpus_covers_every_link_and_entry() -> None:
    assert {link for case in CASES for link in case.links} == set(LINKS)
    assert {case.entry for case in CASES} == set(ENTRIES)
