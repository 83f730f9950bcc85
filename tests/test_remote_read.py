"""Reading commands on s3:// and gs:// model bases, against real servers on loopback.

Each test runs on both backends (moto for S3, fake-gcs-server for GCS) and
compares with the same command on the local copy: a remote base must read
exactly as the local one does, moving only saved_model.pb, variables.index
and the listing (never a variable shard).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smsurgery.core.errors import NotASavedModel, PathNotFound, StorageError, VersionNotFound
from smsurgery.inspect.check import check
from smsurgery.inspect.describe import describe
from smsurgery.inspect.diff import diff
from smsurgery.inspect.scan import scan
from smsurgery.serving.request_body import build_request
from smsurgery.storage.transfer import TRANSFER
from tests.conftest import FIXTURES, assert_one_line_error, run_cli

MODEL = FIXTURES / "models" / "tf2_module"


@pytest.fixture
def two_versions(store, tmp_path: Path) -> tuple[str, Path]:
    """A remote base with versions 1 and 2 (the same model), and its local twin."""
    local = tmp_path / "m"
    shutil.copytree(MODEL / "1", local / "1")
    shutil.copytree(MODEL / "1", local / "2")
    url = store.prefix()
    store.upload(local, url)
    return url, local


def _same(remote: dict, local: dict, remote_url: str) -> None:
    """The JSON reports agree except for the paths, which name the URL instead of the folder."""
    for report in (remote, local):
        report.pop("path", None)
        report.pop("base", None)
    assert remote == local, remote_url


def test_show_reads_a_remote_base_without_its_shards(two_versions) -> None:
    url, local = two_versions
    before = TRANSFER.downloaded
    remote = describe(url)
    moved = TRANSFER.downloaded - before
    assert remote["path"] == f"{url}/2" and remote["base"] == url and remote["versions"] == [1, 2]
    _same(remote, describe(local), url)
    shard = (local / "2" / "variables" / "variables.data-00000-of-00001").stat().st_size
    everything = sum(p.stat().st_size for p in (local / "2").rglob("*") if p.is_file())
    assert moved == everything - shard  # pb, index, fingerprint: never the shard


def test_diff_scan_check_request_on_a_remote_base(two_versions) -> None:
    url, local = two_versions
    assert diff(f"{url}@1", f"{url}@2").to_json()["changes"] == diff(local / "1", local / "2").to_json()["changes"]
    assert diff(url, None).to_json()["old"]["version"] == 1
    remote_scan, local_scan = scan(url), scan(local)
    _same(remote_scan, local_scan, url)
    remote_check, local_check = check(url).to_json(), check(local).to_json()
    assert remote_check["findings"] == local_check["findings"] and remote_check["versions"] == local_check["versions"]
    built = build_request(f"{url}@1")
    assert built.model_name == "m" and built.version == 1
    assert built.body == build_request(local / "1").body


def test_remote_errors_name_the_problem(store, two_versions) -> None:
    url, _ = two_versions
    with pytest.raises(VersionNotFound, match="versions: 1, 2"):
        describe(f"{url}@7")
    with pytest.raises(PathNotFound, match="nothing is stored"):
        check(url + "-nothing-here")
    with pytest.raises((StorageError, PathNotFound), match=r"does not exist|nothing is stored"):
        scan(f"{store.scheme}://no-such-bucket-here/m")
    store.fs.pipe_file(f"{url.split('://')[1]}/3/variables/variables.index", b"x")
    with pytest.raises(NotASavedModel, match=r"3 has no saved_model\.pb"):
        scan(url)


def test_show_cli_on_both_backends(store, two_versions) -> None:
    url, _ = two_versions
    result = run_cli("show", f"{url}@1", "--json", env=store.env)
    assert result.code == 0, result.stderr
    assert '"version": 1' in result.stdout
    tensors = run_cli("tensors", f"{url}@1", "--json", env=store.env)  # validated against its schema
    assert tensors.code == 0 and f'"path": "{url}@1"' in tensors.stdout, tensors.stderr
    missing = run_cli("show", f"{store.scheme}://no-such-bucket-here/m", env=store.env)
    assert_one_line_error(missing)


def test_config_write_and_check_name_a_bucket_base(store, two_versions, tmp_path: Path) -> None:
    from smsurgery.serving.models_config import Policy, check_config, write_config

    url, _ = two_versions
    config = tmp_path / "models.config"
    config.write_text(write_config([url], [], Policy("all"), {"stable": 1}))
    assert f'base_path: "{url}"' in config.read_text() and 'name: "m"' in config.read_text()
    report = check_config(config)
    assert [(m.base_path, m.versions) for m in report.models] == [(url, [1, 2])]
    assert [r.to_json()["findings"] for r in report.models[0].reports] == [[], []]  # each version checked
    with pytest.raises(StorageError, match="does not exist"):
        write_config([url + "-nothing-here"], [], Policy("latest"), {})
