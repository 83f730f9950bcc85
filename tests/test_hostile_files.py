"""Broken and hostile models: a clear one-line error, nothing written, nothing outside touched.

The corpus (tests/hostile/corpus.py) damages copies of a fixture model in
every way issue 8 lists. For each case: `show` exits 2 with one line naming
the problem; the library (`describe`, and the proto publisher for the
writing side) raises a SmsurgeryError with the same words; afterwards the
whole temporary tree is byte-identical, with no new version and no staging
folder. Permission cases run as an unprivileged user (root reads anything),
and a full disk is a file-size limit on a publishing process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smsurgery.core import protos
from smsurgery.core.errors import CorruptModel, PathNotFound, PublishError, SmsurgeryError
from smsurgery.core.integrity import WARNING, check_version
from smsurgery.core.model import read
from smsurgery.inspect.describe import describe
from smsurgery.publishing.atomic import STAGING_PREFIX, carry_over, staged_version
from smsurgery.publishing.new_version import publish_proto
from tests.conftest import (
    REALMODELS,
    REPO,
    _closed_folder,
    assert_one_line_error,
    require_unprivileged_python,
    run_cli,
    run_unprivileged,
    tree_digest,
)
from tests.crash_harness import tf1_load
from tests.hostile.corpus import CASES, NEEDS_ROOT, SENTINEL, SPECIAL_FILE_CASES, Case, make_case


def _listing(root: Path) -> list[str]:
    """Every path under root, symlinks not followed: a new file or folder anywhere shows up."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
    )


def _assert_words(error: BaseException, words: tuple[str, ...]) -> None:
    for word in words:
        assert word.lower() in str(error).lower(), (word, str(error))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_model_is_refused_by_show_and_by_the_publisher(tmp_path: Path, case: Case) -> None:
    if case.name in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    base, _version, outside = make_case(case, tmp_path)
    before, listing = tree_digest(tmp_path), _listing(tmp_path)

    assert_one_line_error(run_cli("show", base), *case.words)
    with pytest.raises(SmsurgeryError) as described:
        describe(base)
    _assert_words(described.value, case.words)
    with pytest.raises(SmsurgeryError) as published:
        source = read(base)  # a broken saved_model.pb is refused here already
        publish_proto(source, source.proto)
    _assert_words(published.value, case.words)

    assert tree_digest(tmp_path) == before
    assert _listing(tmp_path) == listing, "a version, a staging folder or a copy appeared"
    assert (outside / SENTINEL).read_text() == "must never be read or copied\n"


def test_corpus_covers_the_issue_list() -> None:
    """The issue's list, by case name: a reminder when a case is dropped."""
    names = {c.name for c in CASES}
    assert {"pb_truncated", "pb_random", "pbtxt_syntax", "shard_missing", "shard_truncated"} <= names
    assert {"index_of_other_data", "asset_absent", "asset_dotdot", "asset_absolute", "symlink_loop"} <= names
    assert names >= SPECIAL_FILE_CASES
    assert len(CASES) >= 24


def test_unread_absent_asset_is_a_warning_as_the_loaders_accept_it(model_copy) -> None:
    """TensorFlow Serving's own half_plus_two models name an asset they lack; they still load."""
    name = "saved_model_half_plus_two_cpu_with_saved_model_config"
    if not (REALMODELS / name).is_dir():
        pytest.skip("real models not available")
    base = model_copy(REALMODELS / name)
    problems = check_version(read(base))
    assert [(p.severity, p.path) for p in problems] == [(WARNING, "assets/foo.txt")]
    assert describe(base)["signatures"]
    published = publish_proto(read(base), read(base).proto)
    assert published.version == 124


def test_carry_over_of_a_vanished_file_names_it_and_leaves_nothing(tmp_path: Path, model_copy) -> None:
    """A file that disappears between the check and the copy: PublishError naming it, no staging."""
    base = model_copy("tf1_lookup")
    source = base / "1"
    (source / "assets" / "vocab.txt").unlink()
    os.symlink(tmp_path / "gone.txt", source / "assets" / "vocab.txt")
    out = tmp_path / "out"
    with pytest.raises(PublishError) as error, staged_version(out) as staging:
        carry_over(source, staging.path)
    _assert_words(error.value, ("vocab.txt", "nothing was published"))
    assert _listing(out) == []


# --- symlinks inside the version are carried as what they point at (item 4) ------------------------


@pytest.mark.slow
def test_symlinked_folder_and_shard_inside_the_version_are_carried_as_real_ones(model_copy) -> None:
    """assets -> assets_real and a shard that is a symlink: the new version holds the data, and loads."""
    base = model_copy("tf1_lookup")
    version = base / "1"
    (version / "assets").rename(version / "assets_real")
    os.symlink("assets_real", version / "assets")
    shard = version / "variables" / "variables.data-00000-of-00001"
    shard.rename(version / "shard_real")
    os.symlink("../shard_real", shard)
    result = run_cli("signature", "rename", f"{base}@1", "serving_default", "renamed")  # verified by both runs
    assert result.code == 0, result.stderr
    new = base / "2"
    assert (new / "assets").is_dir() and not (new / "assets").is_symlink()
    assert (new / "assets" / "vocab.txt").read_bytes() == (version / "assets_real" / "vocab.txt").read_bytes()
    new_shard = new / "variables" / "variables.data-00000-of-00001"
    assert not new_shard.is_symlink() and new_shard.read_bytes() == (version / "shard_real").read_bytes()
    assert "verified against the source" in result.stderr
    tf1_load(new, ("serve",))
    assert os.path.islink(version / "assets") and os.path.islink(shard), "the source was changed"


def test_an_incomplete_new_version_names_the_missing_file_before_verification(model_copy) -> None:
    """The staged version is checked like a source: a missing asset is the cause, not a signature."""
    base = model_copy("tf1_lookup")
    source = read(base)
    edited = protos.SavedModel()
    edited.CopyFrom(source.proto)
    asset_class = protos.message_class("tensorflow/core/protobuf/meta_graph.proto", "tensorflow.AssetFileDef")
    for meta in edited.meta_graphs:
        for packed in meta.collection_def["saved_model_assets"].any_list.value:
            asset = asset_class.FromString(packed.value)
            asset.filename = "other_vocab.txt"  # the table initializer reads it; the source has no such file
            packed.value = asset.SerializeToString()

    def verification(_staging: Path) -> None:
        raise AssertionError("verification ran on an incomplete version")

    with pytest.raises(PublishError) as error:
        publish_proto(source, edited, before_publish=verification)
    _assert_words(error.value, ("new version would be incomplete", "assets/other_vocab.txt", "is missing"))
    assert sorted(p.name for p in base.iterdir()) == ["1"]


# --- a full disk -------------------------------------------------------------------------------

_PUBLISH_SCRIPT = """
import json, sys
from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import read
from smsurgery.publishing.new_version import publish_proto
from smsurgery.publishing.target import PublishTarget
source = read(sys.argv[1])
try:
    published = publish_proto(source, source.proto, PublishTarget(base=sys.argv[2], link=False))
    print(json.dumps({"ok": published.version}))
except SmsurgeryError as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def _limit_file_size(limit: int):
    def apply() -> None:
        # Without ignoring SIGXFSZ the kernel kills the writer; ignored, write() fails with EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_gives_a_clear_error_and_publishes_nothing(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    before = tree_digest(base)
    out = tmp_path / "out"
    out.mkdir()
    (out / "1").mkdir()  # an existing version that must stay alone
    proc = subprocess.run(
        [sys.executable, "-c", _PUBLISH_SCRIPT, str(base), str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size(4096),  # saved_model.pb is ~16 KB
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["error"] == "PublishError", result
    _assert_words(Exception(result["message"]), ("file too large", "nothing was published"))
    assert sorted(p.name for p in out.iterdir()) == ["1"]
    assert tree_digest(base) == before


# --- permissions (root reads everything, so these run as an unprivileged user) ------------------


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("1", ("cannot read", "permission denied")),
        ("1/saved_model.pb", ("saved_model.pb", "permission denied")),
        ("1/variables/variables.index", ("variables.index", "permission denied")),
        ("1/assets", ("assets", "cannot be read")),
    ],
)
def test_unreadable_parts_give_a_clear_error(world_readable_dir: Path, target: str, words: tuple[str, ...]) -> None:
    require_unprivileged_python()
    base = world_readable_dir / "model"
    shutil.copytree(REPO / "fixtures" / "models" / "tf1_lookup", base)
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (base / target).chmod(0)
    before = _listing(world_readable_dir)
    proc = run_unprivileged(["-m", "smsurgery", "show", str(base)])
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    _assert_words(Exception(lines[0]), words)
    assert _listing(world_readable_dir) == before


def test_the_permission_skip_reason_names_the_folder_closed_to_others(world_readable_dir: Path) -> None:
    """A checkout inside a root-only folder: the skip reason is one line naming that folder."""
    closed = world_readable_dir / "closed"
    (closed / "checkout").mkdir(parents=True)
    closed.chmod(0o700)
    assert _closed_folder(closed / "checkout") == closed
    assert _closed_folder(world_readable_dir) is None


def test_layout_names_an_unreadable_version_folder_in_process(tmp_path: Path, model_copy) -> None:
    """The same error class for a Python caller (checked without privileges only)."""
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions are not enforced; the unprivileged CLI test covers this")
    base = model_copy("tf1_lookup")
    (base / "1").chmod(0)
    try:
        with pytest.raises((PathNotFound, CorruptModel)):
            describe(base)
    finally:
        (base / "1").chmod(0o755)
    assert not any(p.name.startswith(STAGING_PREFIX) for p in base.iterdir())
