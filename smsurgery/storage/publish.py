"""Publish a locally staged version into a remote model base without Serving ever loading half of it.

Object stores have no rename, and TensorFlow Serving sees a version as soon
as one object under `BASE/N/` exists. The protocol (docs/buckets.md tells
what a Serving poll sees at each step):

1. clean stale staging prefixes and claims of dead writers, by age (their
   names carry their start time; pids mean nothing across machines);
2. upload what is new (the edited `saved_model.pb`, changed files) under a
   hidden staging prefix `BASE/.smsurgery-staging-<time>-<random>/`: not an
   integer name, so Serving skips it;
3. claim version N with a conditional create of `BASE/.smsurgery-claim-N`
   (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`): of two writers only
   one creates it; the winner then lists the base again and gives N up if a
   version N appeared meanwhile (written by another tool);
4. copy, inside the store (S3 CopyObject, GCS rewrite), every file except
   `saved_model.pb` into `BASE/N/`: files byte-identical to the source
   version's (the variable shards of a signature edit) straight from the
   source version, the rest from the staging prefix;
5. copy `saved_model.pb` last: only now can a load of N succeed;
6. delete the staging prefix and the claim.

A failure after the claim withdraws what was copied into `BASE/N/` (best
effort: a stopped server may leave a prefix without `saved_model.pb`, which
Serving cannot load) and never leaves a `saved_model.pb` beside missing files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any

from smsurgery.core.errors import PublishError, StorageError
from smsurgery.core.layout import INT64_MAX, SAVED_MODEL_FILES, check_new_version, parse_version_name
from smsurgery.publishing.atomic import STAGING_PREFIX, ProgressCallback, Staging
from smsurgery.storage.fs import filesystem, storage_errors
from smsurgery.storage.mirror import cache_dir, list_children, mirror_of
from smsurgery.storage.transfer import TRANSFER
from smsurgery.storage.url import RemoteURL, parse

CLAIM_PREFIX = ".smsurgery-claim-"
_STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-[0-9a-f]{12}")
_CLAIM_NAME = re.compile(re.escape(CLAIM_PREFIX) + r"(\d+)")
# A staging prefix or claim older than this belongs to a dead writer (a live one finishes in minutes).
STALE_SECONDS = 6 * 3600
# Server-side copies at once in step 5: each is one request the store serves on its side, so the
# wait for N shards is about that of the largest rather than their sum.
COPY_THREADS = 8
# Called with the name of each step as it is reached ("uploaded", "claimed", "copying", "copied",
# "published"): progress reports, and the crash tests that kill a writer at each step.
STAGE_HOOKS: list[Callable[[str], None]] = []


def _stage(name: str) -> None:
    for hook in STAGE_HOOKS:
        hook(name)


def stale_after() -> float:
    """`STALE_SECONDS`, or `SMSURGERY_STALE_STAGING_SECONDS` where a fleet needs another age."""
    return float(os.environ.get("SMSURGERY_STALE_STAGING_SECONDS", STALE_SECONDS))


def _children(fs: Any, base: RemoteURL) -> set[str]:
    """The base's child names; a base not created yet has none, a missing bucket is an error."""
    try:
        return list_children(base)
    except StorageError as error:
        if not isinstance(error.__cause__, FileNotFoundError):
            raise
        if not fs.exists(base.bucket):
            raise StorageError(f"cannot publish into {base}: bucket {base.bucket} does not exist") from None
        return set()  # a new base: its first version creates it


def existing_versions(fs: Any, base: RemoteURL) -> set[int]:
    """Version numbers Serving would read from the base's children."""
    return {n for n in map(parse_version_name, _children(fs, base)) if n is not None}


def clean_stale(fs: Any, base: RemoteURL, max_age: float | None = None) -> list[str]:
    """Delete staging prefixes and claims of writers that started more than `max_age` s ago; nothing else."""
    age = stale_after() if max_age is None else max_age
    now, removed = time.time(), []
    for name in sorted(_children(fs, base)):
        if (match := _STAGING_NAME.fullmatch(name)) is not None:
            started = float(match.group(1))
        elif _CLAIM_NAME.fullmatch(name) is not None:
            started = _claim_time(fs, base.child(name))
        else:
            continue  # not a name we give: never ours to remove
        if now - started > age:
            fs.rm(base.child(name).path, recursive=True)
            removed.append(name)
    return removed


def _claim_time(fs: Any, marker: RemoteURL) -> float:
    try:
        return float(json.loads(fs.cat_file(marker.path))["time"])
    except (ValueError, KeyError, TypeError, FileNotFoundError):
        return 0.0  # unreadable: as old as can be


def _next_number(fs: Any, base: RemoteURL) -> int:
    newest = max(existing_versions(fs, base), default=0)
    if newest >= INT64_MAX:
        raise PublishError(f"{base} already has version {INT64_MAX}, the largest TensorFlow Serving can read")
    return max(newest, 0) + 1


def claim(fs: Any, base: RemoteURL, version: int | None, owner: str) -> int:
    """Take version N (the given one, else the next free) by a conditional create of its claim marker."""
    number = version if version is not None else _next_number(fs, base)
    for _attempt in range(100):
        marker = base.child(f"{CLAIM_PREFIX}{number}")
        body = json.dumps({"staging": owner, "time": time.time()}).encode()
        try:
            fs.pipe_file(marker.path, body, mode="create")  # S3 If-None-Match: *, GCS ifGenerationMatch=0
        except FileExistsError:
            if version is not None:
                raise PublishError(f"version {version} of {base} is claimed by another writer") from None
            number += 1
            continue
        if number in existing_versions(fs, base):  # written meanwhile by a tool that does not claim
            fs.rm(marker.path)
            if version is not None:
                raise PublishError(f"version {version} already exists in {base}")
            number += 1
            continue
        return number
    raise PublishError(f"gave up finding a free version number in {base}")


def _identical(a: Path, b: Path) -> bool:
    if not b.is_file() or a.stat().st_size != b.stat().st_size:
        return False
    if os.path.samefile(a, b):
        return True
    with open(a, "rb") as left, open(b, "rb") as right:
        while chunk := left.read(8 << 20):
            if chunk != right.read(len(chunk)):
                return False
    return True


def plan_files(local: Path, source_dir: Path | None, base: RemoteURL) -> dict[str, RemoteURL | None]:
    """Each file of the new version -> the source object to copy it from, or None (upload it)."""
    mirror = mirror_of(source_dir) if source_dir is not None else None
    same_store = mirror is not None and mirror.url.scheme == base.scheme
    plan: dict[str, RemoteURL | None] = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        relative = path.relative_to(local).as_posix()
        unchanged = same_store and relative in mirror.sizes and _identical(path, source_dir / relative)
        plan[relative] = mirror.url.child(relative) if unchanged and relative not in SAVED_MODEL_FILES else None
    return plan


class _Bar:
    """An fsspec callback feeding the command's ProgressCallback (shown for transfers of 64 MB and more)."""

    def __init__(self, relative: str, progress: ProgressCallback | None) -> None:
        from fsspec.callbacks import Callback

        outer = self

        class _Callback(Callback):
            def call(self, *args: Any, **kwargs: Any) -> None:
                if outer.progress is not None and self.size:
                    outer.progress(outer.relative, self.value, self.size)

        self.relative, self.progress, self.callback = relative, progress, _Callback()


def publish_tree(
    local: Path, base: RemoteURL, version: int | None, source_dir: Path | None, progress: ProgressCallback | None
) -> int:
    """Run the protocol of the module docstring for the staged folder `local`; the version published."""
    fs = filesystem(base)
    with storage_errors(base, f"publish into {base}"):
        clean_stale(fs, base)
        stage = base.child(f"{STAGING_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:12]}")
        plan = plan_files(local, source_dir, base)
        try:
            for relative, origin in plan.items():
                if origin is None:
                    size = (local / relative).stat().st_size
                    bar = _Bar(f"upload {relative}", progress)
                    fs.put_file(str(local / relative), stage.child(relative).path, callback=bar.callback)
                    TRANSFER.uploaded += size
            _stage("uploaded")
            number = claim(fs, base, version, stage.name)
            try:
                _copy_into(fs, base.child(str(number)), plan, stage, local)
            except BaseException:
                _withdraw(fs, base, number)
                raise
            _stage("published")
            _quietly(fs.rm, base.child(f"{CLAIM_PREFIX}{number}").path)
        finally:
            _quietly(fs.rm, stage.path, recursive=True)
    return number


def _copy_into(fs: Any, target: RemoteURL, plan: dict[str, RemoteURL | None], stage: RemoteURL, local: Path) -> None:
    """Step 5 in parallel (`COPY_THREADS` copies at once), then, once every one of them succeeded, step 6."""
    _stage("claimed")
    last = [name for name in plan if name in SAVED_MODEL_FILES]
    first = [name for name in plan if name not in SAVED_MODEL_FILES]
    counted = threading.Lock()

    def copy(relative: str) -> None:
        origin = plan[relative] or stage.child(relative)
        fs.copy(origin.path, target.child(relative).path)  # inside the store: no byte through this machine
        with counted:
            TRANSFER.copied += (local / relative).stat().st_size
        _stage("copying")

    with ThreadPoolExecutor(max_workers=max(1, min(COPY_THREADS, len(first) or 1))) as pool:
        futures = [pool.submit(copy, relative) for relative in first]
        for future in as_completed(futures):
            if future.exception() is not None:
                for pending in futures:
                    pending.cancel()
                wait(futures)  # no copy may still be running when the caller withdraws the version
                raise future.exception()  # type: ignore[misc]
    _stage("copied")  # everything but saved_model.pb is in place
    for relative in last:
        copy(relative)


def _withdraw(fs: Any, base: RemoteURL, number: int) -> None:
    """Best effort after a failure: delete what this writer copied into BASE/N/ (saved_model.pb first)."""
    target = base.child(str(number))
    steps = [(fs.rm, target.child(name).path) for name in SAVED_MODEL_FILES]
    steps += [(fs.rm, target.path, True), (fs.rm, base.child(f"{CLAIM_PREFIX}{number}").path)]
    for action, *args in steps:
        if not _quietly(action, *args):
            return  # the store is gone: every further request would wait out its retries too


def _quietly(action: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Run a clean-up step; False when it failed (and why does not matter: it was best effort)."""
    try:
        action(*args, **kwargs)
    except FileNotFoundError:
        return True
    except Exception:
        return False
    return True


def refuse_base_inside_a_version(fs: Any, base: RemoteURL) -> None:
    """`--out s3://b/m/1` must not nest versions inside version 1 (as `atomic`'s check for folders)."""
    children = _children(fs, base)
    if children & set(SAVED_MODEL_FILES):
        raise PublishError(
            f"cannot publish into {base}: it is a version (it holds saved_model.pb)",
            hint="publish into the model base that holds the versions",
        )
    if "/" in base.path and parse_version_name(base.name) is not None:
        siblings = _children(fs, base.parent)
        if any(parse_version_name(name) is not None for name in siblings - {base.name}):
            raise PublishError(
                f"cannot publish into {base}: it would become a version of {base.parent} without a model",
                hint=f"publish into {base.parent} with --version {base.name}",
            )


@contextlib.contextmanager
def remote_staged_version(
    base_url: str, version: int | None, source_dir: Path | None, progress: ProgressCallback | None = None
) -> Iterator[Staging]:
    """`atomic.staged_version` for a remote base: build locally, then `publish_tree` when the block ends."""
    base, at = parse(base_url)
    if at is not None:
        raise PublishError(f"--out {base_url}: a model base has no @VERSION", hint="choose it with --version")
    if version is not None:
        check_new_version(version)
    with storage_errors(base, f"publish into {base}"):
        refuse_base_inside_a_version(filesystem(base), base)
        if version is not None and version in existing_versions(filesystem(base), base):
            raise PublishError(f"version {version} already exists in {base}")
    folder = cache_dir("publish")
    staging = Staging(base=folder, path=folder / "new", version=version)
    staging.path.mkdir()
    try:
        yield staging
        staging.version = publish_tree(staging.path, base, version, source_dir, progress)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
