"""A big remote saved_model.pb is read by ranges: the skim's fields, never the graph, unless it is needed.

The model is tf1_linear with a 9 MiB constant added to its graph (over
`show`'s graph-read limit), in both emulators. `show`, `diff` and
`request` must print what they print on the local copy while fetching a
small fraction of saved_model.pb; moto's request log shows every GET of it
was a ranged one. Reading the graph (`show --graph`) downloads the file
whole, once. TensorFlow-free.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from smsurgery.core import protos
from smsurgery.inspect.describe import describe
from smsurgery.inspect.diff import diff
from smsurgery.serving.request_body import build_request
from smsurgery.storage.transfer import TRANSFER
from tests.conftest import FIXTURE_MODELS, run_cli
from tests.remote_servers import Store, moto_requests

PATHS = ("path", "base")


@pytest.fixture(scope="module")
def big_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tf1_linear plus a 9 MiB constant: a saved_model.pb of 9 MiB whose small fields are a few kB."""
    base = tmp_path_factory.mktemp("ranged") / "big"
    shutil.copytree(FIXTURE_MODELS / "tf1_linear", base)
    pb = next(base.glob("*/saved_model.pb"))
    saved = protos.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    node = saved.meta_graphs[0].graph_def.node.add(name="frozen_weights", op="Const")
    node.attr["dtype"].type = 1  # DT_FLOAT: a constant TensorFlow loads
    tensor = node.attr["value"].tensor
    tensor.dtype = 1
    tensor.tensor_shape.dim.add(size=(9 << 20) // 4)
    tensor.tensor_content = bytes(9 << 20)
    pb.write_bytes(saved.SerializeToString())
    return base


def _uploaded(store: Store, local: Path) -> tuple[str, int]:
    url = store.upload(local, store.prefix("big"))
    return url, next(local.glob("*/saved_model.pb")).stat().st_size


def _without_paths(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in PATHS}


def test_show_diff_request_fetch_a_small_part_of_saved_model_pb(store: Store, big_local: Path) -> None:
    url, size = _uploaded(store, big_local)
    before = TRANSFER.downloaded
    shown = describe(url)
    assert shown["graph_read"] is False and shown["graph_bytes"] > 9 << 20
    assert _without_paths(shown) == _without_paths(describe(big_local))
    assert diff(url, big_local).to_json()["changes"] == []
    assert build_request(url).body == build_request(big_local).body
    moved = TRANSFER.downloaded - before
    small = sum(p.stat().st_size for p in big_local.rglob("*") if p.is_file() and p.name != "saved_model.pb")
    assert moved - 3 * small < size // 20  # the three reads together: under 5% of saved_model.pb


def test_the_graph_is_downloaded_whole_once_when_it_is_needed(store: Store, big_local: Path) -> None:
    url, size = _uploaded(store, big_local)
    before = TRANSFER.downloaded
    asked = describe(url, graph=True, ops=True)
    assert asked["graph_read"] is True and asked["ops"] == describe(big_local, ops=True)["ops"]
    assert size <= TRANSFER.downloaded - before < size + size // 10


def test_moto_sees_only_ranged_gets_of_saved_model_pb(s3_store: Store, big_local: Path, tmp_path: Path) -> None:
    url, size = _uploaded(s3_store, big_local)
    with moto_requests(tmp_path / "requests.jsonl") as seen:
        result = run_cli("show", url, "--json", env=s3_store.env)
    assert result.code == 0, result.stderr
    local = run_cli("show", big_local, "--json")
    assert _without_paths(json.loads(result.stdout)) == _without_paths(json.loads(local.stdout))
    gets = [r for r in seen if r["method"] == "GET" and r["url"].split("?")[0].endswith("/1/saved_model.pb")]
    assert gets, "saved_model.pb was never fetched"
    ranges = [r["headers"].get("Range") or r["headers"].get("range") for r in gets]
    assert all(ranges), ranges  # no GET of the whole object
    fetched = 0
    for text in ranges:
        start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", text).groups())
        fetched += min(end, size - 1) - start + 1
    assert fetched < size // 20, (fetched, size)


def test_an_edit_of_a_big_remote_graph_writes_it_from_the_whole_file(store: Store, big_local: Path, tmp_path) -> None:
    from smsurgery.edits.draft import edit
    from smsurgery.edits.kinds import RenameSignature
    from smsurgery.publishing.target import PublishTarget

    url, _ = _uploaded(store, big_local)
    local = tmp_path / "big"
    shutil.copytree(big_local, local)
    rename = [RenameSignature("prediction", "renamed")]
    edit(url, rename, target=PublishTarget(verify=False))
    edit(local, rename, target=PublishTarget(verify=False))
    published = store.download(f"{url}/2", tmp_path / "published")
    remote_pb, local_pb = protos.SavedModel(), protos.SavedModel()
    remote_pb.ParseFromString((published / "saved_model.pb").read_bytes())
    local_pb.ParseFromString((local / "2" / "saved_model.pb").read_bytes())
    assert remote_pb == local_pb and "renamed" in remote_pb.meta_graphs[0].signature_def


@pytest.mark.slow
def test_a_verified_edit_of_a_big_remote_graph_runs_it_with_tensorflow(store: Store, big_local: Path, tmp_path) -> None:
    from smsurgery.edits.draft import edit
    from smsurgery.edits.kinds import RenameSignature
    from smsurgery.graph.session import load_session

    url, _ = _uploaded(store, big_local)
    result = edit(url, [RenameSignature("prediction", "renamed")])  # verified: both versions run in TensorFlow
    assert result.verification is not None and result.verification.ok
    with load_session(store.download(f"{url}/2", tmp_path / "2"), ["serve"]) as session:
        assert "renamed" in session.meta_graph.signature_def
