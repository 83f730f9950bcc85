"""Publishing into s3:// and gs:// model bases, against real servers on loopback.

What Serving may see is the point of every test here: a version prefix
with a `saved_model.pb` must hold every file the model needs, whatever the
writer went through (a rival writer, a SIGKILL at each step, a server
stopped mid-publish).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smsurgery.core.errors import PublishError, SmsurgeryError
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import RenameSignature
from smsurgery.publishing.target import PublishTarget
from smsurgery.storage import publish as remote_publish
from smsurgery.storage.fs import forget_filesystems
from tests.conftest import FIXTURES, REPO, assert_one_line_error, run_cli
from tests.remote_servers import BUCKET, MotoS3, Store

MODEL = FIXTURES / "models" / "tf2_module"
FILES = {"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"}
NO_VERIFY = PublishTarget(verify=False)


def _base(store: Store) -> str:
    return store.upload(MODEL, store.prefix())


def _rename(url: str, new: str = "renamed", target: PublishTarget = NO_VERIFY):
    return edit(url, [RenameSignature("serving_default", new)], target=target)


def assert_serving_sees_no_broken_version(store: Store, url: str, required: set[str] = FILES) -> dict[int, set[str]]:
    """Every integer prefix holding a saved_model.pb holds the whole model; returns the versions' files."""
    versions: dict[int, set[str]] = {}
    for key in store.keys(url):
        head, _, rest = key.partition("/")
        if head.isdigit():
            versions.setdefault(int(head), set()).add(rest)
    for number, files in versions.items():
        if "saved_model.pb" in files:
            assert files >= required, (number, files)
    return versions


def test_rename_publishes_into_the_source_base_copying_shards_inside_the_store(store: Store) -> None:
    url = _base(store)
    before = store.keys(url)
    result = _rename(url)
    assert result.published.path == f"{url}/2"
    moved = result.to_json()["transfer"]
    shard = before["1/variables/variables.data-00000-of-00001"]
    assert moved["bytes_uploaded"] == store.keys(url)["2/saved_model.pb"]  # only the edited file
    assert moved["bytes_copied"] >= shard + before["1/variables/variables.index"]
    assert {k: v for k, v in store.keys(url).items() if k.startswith("1/")} == before  # source untouched
    assert not [k for k in store.keys(url) if k.startswith(".smsurgery")]  # staging and claim removed
    assert assert_serving_sees_no_broken_version(store, url)[2] == FILES


@pytest.mark.slow
def test_published_version_loads_with_both_loaders_after_download(store: Store, tmp_path: Path) -> None:
    from smsurgery.graph.session import load_session, load_tf2

    url = _base(store)
    result = _rename(url, target=PublishTarget())  # verified: TensorFlow ran both versions (shards downloaded)
    assert result.verification is not None and result.verification.ok
    local = store.download(f"{url}/2", tmp_path / "2")
    with load_session(local, ["serve"]) as session:
        assert set(session.meta_graph.signature_def) >= {"renamed"}
    assert "renamed" in load_tf2(local).signatures


def test_cli_rename_into_another_remote_base_reports_bytes(store: Store) -> None:
    url, out = _base(store), store.prefix("copy")
    result = run_cli(
        "signature", "rename", f"{url}@1", "serving_default", "renamed", "--out", out, "--no-verify", "--json",
        env=store.env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == f"{out}/1" and report["transfer"]["bytes_copied"] > 0
    assert assert_serving_sees_no_broken_version(store, out)[1] == FILES


def test_two_writers_never_both_publish_one_version(store: Store) -> None:
    url = _base(store)
    seen: list[int] = []
    running: list[bool] = []

    def rival(stage: str) -> None:  # writer B runs whole while writer A holds its claim on 2
        if stage == "claimed" and not running:
            running.append(True)
            seen.append(_rename(f"{url}@1", "by_b").published.version)
            with pytest.raises(PublishError, match="claimed by another writer"):
                _rename(f"{url}@1", "by_c", PublishTarget(version=2, verify=False))

    remote_publish.STAGE_HOOKS.append(rival)
    try:
        mine = _rename(f"{url}@1", "by_a").published.version
    finally:
        remote_publish.STAGE_HOOKS.remove(rival)
    assert (mine, seen) == (2, [3])
    with pytest.raises(PublishError, match="already exists"):
        _rename(f"{url}@1", "again", PublishTarget(version=2, verify=False))
    for inside in (f"{url}/1", f"{url}/9"):  # into a version, or a new integer prefix beside versions
        with pytest.raises(PublishError, match="cannot publish into"):
            _rename(f"{url}@1", "nested", PublishTarget(base=inside, verify=False))
    assert set(assert_serving_sees_no_broken_version(store, url)) == {1, 2, 3}


KILLER = """
import os, signal, sys
from smsurgery.edits.draft import edit
from smsurgery.edits.kinds import RenameSignature
from smsurgery.publishing.target import PublishTarget
from smsurgery.storage import publish
stage = sys.argv[2]
publish.STAGE_HOOKS.append(lambda now: now == stage and os.kill(os.getpid(), signal.SIGKILL))
edit(sys.argv[1], [RenameSignature("serving_default", "killed")], target=PublishTarget(verify=False))
"""


@pytest.mark.parametrize("stage", ["uploaded", "claimed", "copying", "copied", "published"])
def test_a_writer_killed_at_any_step_leaves_no_loadable_broken_version(s3_store: Store, stage: str) -> None:
    url = _base(s3_store)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILLER, url, stage], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert_serving_sees_no_broken_version(s3_store, url)
    os.environ["SMSURGERY_STALE_STAGING_SECONDS"] = "0"  # the dead writer's staging is stale at once
    try:
        published = _rename(f"{url}@1", "next").published.version
    finally:
        del os.environ["SMSURGERY_STALE_STAGING_SECONDS"]
    keys = s3_store.keys(url)
    assert not [k for k in keys if k.startswith(".smsurgery-staging-")]  # the next writer cleaned it
    versions = assert_serving_sees_no_broken_version(s3_store, url)
    assert versions[published] == FILES


def test_stale_staging_is_cleaned_by_age_and_nothing_else(store: Store) -> None:
    url = _base(store)
    path = url.split("://", 1)[1]
    old, fresh = ".smsurgery-staging-1000-0123456789ab", f".smsurgery-staging-{2**40}-0123456789ab"
    for name in (old, fresh, ".smsurgery-staging-other", "notes"):
        store.fs.pipe_file(f"{path}/{name}/x", b"x")
    _rename(url)
    left = {k.split("/", 1)[0] for k in store.keys(url)}
    assert old not in left and {fresh, ".smsurgery-staging-other", "notes"} <= left


def test_server_stopped_mid_publish_is_one_line_and_nothing_loadable(tmp_path: Path) -> None:
    server = MotoS3()  # a private server: this test stops it
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    forget_filesystems()
    try:
        store = Store("s3", server.env())
        with contextlib.suppress(FileExistsError):  # moto's buckets live in this process, shared by servers
            store.fs.mkdir(BUCKET)
        url = _base(store)

        def stop(stage: str) -> None:
            if stage == "copying":
                server.stop()  # the socket closes: every later request fails

        remote_publish.STAGE_HOOKS.append(stop)
        try:
            with pytest.raises(SmsurgeryError) as raised:
                _rename(url)
        finally:
            remote_publish.STAGE_HOOKS.remove(stop)
        assert "\n" not in str(raised.value) and "cannot publish" in str(raised.value)
        restarted = MotoS3.__new__(MotoS3)  # moto keeps its buckets in this process: same data, new socket
        from moto.server import ThreadedMotoServer

        restarted.server = ThreadedMotoServer(ip_address="127.0.0.1", port=server.port, verbose=False)
        restarted.server.start()
        forget_filesystems()
        versions = assert_serving_sees_no_broken_version(store, url)
        assert "saved_model.pb" not in versions.get(2, set())
        restarted.server.stop()
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        forget_filesystems()


def _bare_env(store: Store) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "PYTHONPATH": str(REPO), "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_ENDPOINT_URL": store.env["AWS_ENDPOINT_URL"], "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip


def _cli(args: list[str], env: dict[str, str], prelude: str = ""):
    from tests.conftest import CliResult

    code = f"import sys\n{prelude}\nfrom smsurgery.cli.app import main\nsys.argv = ['smsurgery', *sys.argv[1:]]\nmain()"
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def test_missing_bucket_credentials_and_extra_are_one_line(s3_store: Store) -> None:
    url = _base(s3_store)
    rename = ["signature", "rename", url, "serving_default", "x", "--no-verify"]
    assert_one_line_error(run_cli(*rename[:2], "s3://no-such-bucket-zz/m", *rename[3:], env=s3_store.env))
    assert_one_line_error(
        run_cli(*rename, "--out", "s3://no-such-bucket-zz/m", env=s3_store.env), "bucket", "does not exist"
    )
    assert_one_line_error(_cli(["show", url], _bare_env(s3_store)), "credentials")
    missing = _cli(["show", url], {**os.environ, "PYTHONPATH": str(REPO)}, "sys.modules['s3fs'] = None")
    assert_one_line_error(missing, "s3fs", "smsurgery[s3]")
    assert_serving_sees_no_broken_version(s3_store, url)
    assert not [k for k in s3_store.keys(url) if not k.startswith("1/")]


def test_local_only_routes_refuse_a_url_instead_of_making_a_folder_named_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsurgery.publishing.atomic import staged_version

    monkeypatch.chdir(tmp_path)
    with pytest.raises(PublishError, match="object storage"), staged_version(Path("s3://bucket/m")):
        pass
    assert not (tmp_path / "s3:").exists()


def test_a_local_source_published_into_a_bucket_uploads_everything_with_progress(s3_store: Store) -> None:
    out = s3_store.prefix("from-local")
    seen: dict[str, int] = {}
    target = PublishTarget(base=out, verify=False, progress=lambda name, done, total: seen.__setitem__(name, total))
    result = edit(MODEL / "1", [RenameSignature("serving_default", "renamed")], target=target)
    assert result.published.path == f"{out}/1"
    assert {f"upload {name}" for name in FILES} <= set(seen)  # no source in the store: nothing to copy from
    assert result.transfer.uploaded == sum(s3_store.keys(out).values())
    assert assert_serving_sees_no_broken_version(s3_store, out)[1] == FILES


def test_warmup_publishes_its_file_into_the_bucket(s3_store: Store) -> None:
    from smsurgery.serving.request_body import build_request
    from smsurgery.serving.warmup import WARMUP_FILE, publish_warmup

    url = _base(s3_store)
    report = publish_warmup(build_request(url), target=NO_VERIFY)
    assert (report.path, report.file) == (f"{url}/2", f"{url}/2/{WARMUP_FILE}")
    assert assert_serving_sees_no_broken_version(s3_store, url)[2] == FILES | {WARMUP_FILE}


def test_parallel_copies_all_land_before_saved_model_pb(store: Store) -> None:
    url = store.upload(FIXTURES / "models" / "tf1_lookup", store.prefix())  # pb, index, shard, assets
    seen: dict[str, set[str]] = {}

    def look(stage: str) -> None:  # what a Serving poll would list at the moment saved_model.pb is copied
        if stage == "copied":
            seen["before"] = {k.split("/", 1)[1] for k in store.keys(url) if k.startswith("2/")}

    remote_publish.STAGE_HOOKS.append(look)
    try:
        edit(url, [RenameSignature("serving_default", "renamed")], target=NO_VERIFY)
    finally:
        remote_publish.STAGE_HOOKS.remove(look)
    after = {k.split("/", 1)[1] for k in store.keys(url) if k.startswith("2/")}
    assert "saved_model.pb" in after and len(after) >= 4
    assert seen["before"] == after - {"saved_model.pb"}
