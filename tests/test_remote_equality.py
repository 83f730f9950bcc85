"""Every fixture model and every real model reads the same from a bucket as from disk, on both emulators.

Each fixture model base is uploaded once per backend (moto for S3,
fake-gcs-server for GCS); `show`, `scan`, `check`, `tensors` and `diff`
on the URL must report what they report on the local folder, except for
the paths, which name the URL. All in-process and TensorFlow-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.tensor_index import list_tensors
from smsurgery.inspect.check import check
from smsurgery.inspect.describe import describe
from smsurgery.inspect.diff import diff
from smsurgery.inspect.scan import scan
from tests.conftest import FIXTURE_MODELS, REALMODELS, fixture_model_names, real_model_names
from tests.remote_servers import Store

PATHS = ("path", "base", "source")
_UPLOADED: dict[tuple[str, str], str] = {}


def _uploaded(store: Store, name: str, root: Path = FIXTURE_MODELS) -> str:
    """The model base `root/name` in the store (uploaded once per session and backend)."""
    key = (store.scheme, str(root / name))
    if key not in _UPLOADED:
        _UPLOADED[key] = store.upload(root / name, store.prefix(name))
    return _UPLOADED[key]


def _without_paths(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key not in PATHS}


def _named(findings: list[dict[str, Any]], where: str) -> str:
    return json.dumps(findings, sort_keys=True).replace(where, "BASE")


@pytest.mark.parametrize("name", fixture_model_names())
def test_a_remote_model_reads_as_the_local_one(store: Store, name: str) -> None:
    url, local = _uploaded(store, name), FIXTURE_MODELS / name
    shown = describe(url)
    assert (shown["path"], shown["base"]) == (f"{url}/1", url)
    assert _without_paths(shown) == _without_paths(describe(local))
    assert _without_paths(scan(url)) == _without_paths(scan(local))
    remote_check, local_check = check(url).to_json(), check(local).to_json()
    # A finding's fix names the model as the user named it: the URL, or the folder.
    assert _named(remote_check["findings"], url) == _named(local_check["findings"], str(local))
    assert diff(url, local).to_json()["changes"] == []
    assert _without_paths(list_tensors(url)) == _without_paths(list_tensors(local))


def _outcome(read: Any, where: str) -> Any:
    """What a reader reports on `where`, or the kind of error it refuses it with."""
    try:
        return read(where)
    except SmsurgeryError as error:
        return type(error).__name__


@pytest.mark.parametrize("name", real_model_names())
def test_a_real_model_reads_from_a_bucket_as_from_disk(store: Store, name: str) -> None:
    """The real models (other tools' exports, some of them odd) read the same through s3:// and gs://."""
    url, local = _uploaded(store, name, REALMODELS), str(REALMODELS / name)
    for read in (describe, scan, list_tensors):
        remote_report, local_report = _outcome(read, url), _outcome(read, local)
        if isinstance(local_report, dict):
            assert _without_paths(remote_report) == _without_paths(local_report), read.__name__
        else:
            assert remote_report == local_report, read.__name__
