"""Version folder names read exactly as TensorFlow Serving reads them.

Serving parses each child of a model base with `absl::SimpleAtoi` into an
int64 (file_system_storage_path_source.cc): ASCII whitespace stripped, one
sign, base-10 digits, leading zeros allowed, int64 range. Duplicates are
resolved by sorted name, the last one winning.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smsurgery.core.errors import PublishError, VersionNotFound
from smsurgery.core.layout import INT64_MAX, check_new_version, parse_version_name, scan_versions
from smsurgery.inspect.describe import describe
from smsurgery.publishing.atomic import next_version
from tests.conftest import REALMODELS, assert_one_line_error, run_cli

HALF = REALMODELS / "saved_model_half_plus_two_cpu"


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("0", 0),
        ("7", 7),
        ("00000123", 123),
        ("+7", 7),
        (" 7", 7),
        ("7\t", 7),
        ("-1", -1),
        ("9223372036854775807", INT64_MAX),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_names_serving_reads(name: str, number: int) -> None:
    assert parse_version_name(name) == number


@pytest.mark.parametrize(
    "name",
    ["", " ", "+", "-", "9223372036854775808", str(10**30), "1e3", "0x10", "1_000", "١٢", "7a", "+-1", "1 2"],
)
def test_names_serving_skips(name: str) -> None:
    assert parse_version_name(name) is None


def _base_with(tmp_path: Path, *names: str) -> Path:
    base = tmp_path / "m"
    base.mkdir()
    for name in names:
        shutil.copytree(HALF / "00000123", base / name)
    return base


def test_duplicates_resolved_as_serving_does(tmp_path: Path) -> None:
    base = _base_with(tmp_path, "1", "01", "001")
    listing = scan_versions(base)
    assert list(listing.versions) == [1]
    assert listing.versions[1].name == "1"  # "001" < "01" < "1": the last name wins
    assert sorted(p.name for p in listing.duplicates[1]) == ["001", "01"]


def test_newest_by_int_value_not_a_folder_serving_skips(tmp_path: Path) -> None:
    base = _base_with(tmp_path, "5", "00000123", str(10**30))
    report = describe(base)
    assert report["version"] == 123 and report["versions"] == [5, 123]
    assert scan_versions(base).skipped == [str(10**30)]
    assert any("10000000000" in w and "skips" in w for w in report["warnings"])


def test_show_warns_about_duplicate_versions(tmp_path: Path) -> None:
    base = _base_with(tmp_path, "2", "02")
    report = describe(base)
    assert report["path"].endswith("/2")
    assert any("02" in w and "version 2" in w for w in report["warnings"])
    result = run_cli("show", base)
    assert result.code == 0 and "02" in result.stderr


@pytest.mark.parametrize("number", [-1, 2**63, 10**30])
def test_writer_refuses_versions_serving_cannot_serve(tmp_path: Path, number: int) -> None:
    base = _base_with(tmp_path, "1")
    before = sorted(p.name for p in base.iterdir())
    result = run_cli("signature", "rename", base, "serving_default", "p", "--version", str(number), "--no-verify")
    assert_one_line_error(result, str(number), "int64")
    assert sorted(p.name for p in base.iterdir()) == before
    with pytest.raises(VersionNotFound):
        check_new_version(number)


def test_no_next_version_after_int64_max(tmp_path: Path) -> None:
    base = _base_with(tmp_path, str(INT64_MAX))
    with pytest.raises(PublishError, match="largest"):
        next_version(base)
    result = run_cli("signature", "rename", base, "serving_default", "p", "--no-verify")
    assert_one_line_error(result, str(INT64_MAX))
    assert sorted(p.name for p in base.iterdir()) == [str(INT64_MAX)]


def test_writer_takes_next_by_int_value(tmp_path: Path) -> None:
    base = _base_with(tmp_path, "9", "00000123", "+7")
    assert next_version(base) == 124
    result = run_cli("signature", "rename", base, "serving_default", "p", "--no-verify")
    assert result.code == 0, result.stderr
    assert (base / "124" / "saved_model.pb").is_file()


def test_diff_compares_the_two_newest_as_serving_orders_them(tmp_path: Path) -> None:
    from smsurgery.inspect.diff import diff

    base = _base_with(tmp_path, "5", "00000123", str(10**30))
    report = diff(base)
    assert (report.old["version"], report.new["version"]) == (5, 123)


def test_every_writer_refuses_through_the_publish_target(tmp_path: Path) -> None:
    """Every writing command builds one PublishTarget before any work; it refuses what Serving cannot serve."""
    from smsurgery.publishing.target import PublishTarget

    with pytest.raises(VersionNotFound, match="int64"):
        PublishTarget(version=-1)
    base = _base_with(tmp_path, "1")
    result = run_cli("warmup", base, "--version", "-1")
    assert_one_line_error(result, "-1", "int64")
    assert sorted(p.name for p in base.iterdir()) == ["1"]
