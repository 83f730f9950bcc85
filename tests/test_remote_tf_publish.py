"""The TensorFlow publishers (attach, re-save, convert) into s3:// and gs:// bases, on real servers.

They build the new version locally through TensorFlow, then publish the
staged folder by the same object-store protocol as the proto edits
(`publishing.new_version.stage_version`). One cheap command per writer:
`example-input` (session route, `publish_session`), `labels` (function
route, `publish_saved`, which `reexport` shares) and `convert`. Each
published version is downloaded and loaded by both loaders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsurgery.graph.session import load_session, load_tf2
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURES
from tests.remote_servers import Store
from tests.test_remote_publish import FILES, assert_serving_sees_no_broken_version

pytestmark = pytest.mark.slow
MODELS = FIXTURES / "models"


def _loads_with_both_loaders(store: Store, url: str, local: Path, signature: str, required: set[str] = FILES) -> None:
    """Serving's view first (no broken version), then TensorFlow on the downloaded version."""
    versions = assert_serving_sees_no_broken_version(store, url.rsplit("/", 1)[0], required)
    assert "saved_model.pb" in versions[int(url.rsplit("/", 1)[1])]
    store.download(url, local)
    with load_session(local, ["serve"]) as session:
        assert signature in session.meta_graph.signature_def
    assert signature in load_tf2(local).signatures
    assert not [k for k in store.keys(url.rsplit("/", 1)[0]) if k.startswith(".smsurgery")]


def test_attach_and_convert_publish_into_a_bucket(store: Store, tmp_path: Path) -> None:
    from smsurgery.graph.convert import convert
    from smsurgery.graph.example import add_example_input
    from smsurgery.graph.labels import add_labels

    tf1 = store.upload(MODELS / "tf1_linear", store.prefix("tf1"))
    example = add_example_input(tf1, "prediction")  # verified: the mirror's shards are downloaded first
    assert (example.path, example.route, example.verification is not None) == (f"{tf1}/2", "session", True)
    _loads_with_both_loaders(store, example.path, tmp_path / "example", example.target)

    keras = store.upload(MODELS / "keras_mlp", store.prefix("keras"))
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("no\nyes\n", encoding="utf-8")
    labels = add_labels(f"{keras}@1", labels_file, "serving_default", target=PublishTarget(verify=False))
    assert (labels.path, labels.route) == (f"{keras}/2", "function")
    _loads_with_both_loaders(store, labels.path, tmp_path / "labels", labels.target)

    out = store.prefix("converted")
    frozen = FIXTURES / "sources" / "frozen.pb"
    report = convert(frozen, out, inputs=["x=input"], outputs=["y=output"], target=PublishTarget(verify=False))
    assert (report.base, report.path) == (out, f"{out}/1")
    frozen_files = {"saved_model.pb"}  # a frozen graph has no variables
    _loads_with_both_loaders(store, report.path, tmp_path / "converted", "serving_default", frozen_files)
