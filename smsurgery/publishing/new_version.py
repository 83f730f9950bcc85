"""Publish an edited SavedModel proto as a new version, carrying files over.

The proto route: the edited `saved_model.pb` is serialized deterministically
into a staging folder, the source version's variables, assets and
assets.extra are carried over (shards hard-linked, the rest copied), and the
folder is renamed into place. TensorFlow is never imported.

`fingerprint.pb` is not carried over: it hashes the old `saved_model.pb`,
and TensorFlow loads a SavedModel without one (both loaders, and Serving)
while a stale one would misreport the model's identity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.core.errors import CorruptModel, PublishError
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef
from smsurgery.core.layout import is_remote_text as is_remote
from smsurgery.core.model import SavedModelFile
from smsurgery.publishing.atomic import (
    CarryReport,
    ProgressCallback,
    Staging,
    carry_over,
    staged_version,
    write_bytes_synced,
)
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget


@dataclass(frozen=True)
class PublishedVersion:
    """The version written; `base` and `path` are URLs (str) when it went into object storage."""

    base: Path | str
    version: int
    path: Path | str
    carried: CarryReport


def target_base(source: SavedModelFile, out_base: str | Path | None) -> Path | str:
    """Where the new version goes: `--out`, else the source's own model base (a URL for a remote source)."""
    where = str(out_base) if out_base is not None else source.ref.remote_base
    if where is not None and is_remote(where):
        return where
    if out_base is not None:
        return Path(out_base)
    if source.ref.base is None:
        raise PublishError(
            f"{source.ref.version_dir} is not inside a model base (its name is not an integer)",
            hint="pass --out BASE to choose where the new version goes",
        )
    return source.ref.base


@contextlib.contextmanager
def stage_version(
    base: Path | str,
    version: int | None,
    *,
    source_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Staging]:
    """The one way every publisher (proto edits, attach, re-save, convert) stages a new version.

    A local base: `atomic.staged_version` (stage, then rename). A URL: the
    object-store protocol of `storage.publish` (stage locally, upload the
    changed files, copy the rest inside the store, `saved_model.pb` last);
    files byte-identical to `source_dir`'s (a mirrored remote version) are
    copied from it inside the store instead of being uploaded.
    """
    if is_remote(str(base)):
        from smsurgery.storage.publish import remote_staged_version  # a local edit never imports the storage package

        with remote_staged_version(str(base), version, source_dir, progress) as staging:
            yield staging
    else:
        with staged_version(Path(base), version) as staging:
            yield staging


def version_location(base: Path | str, number: int) -> Path | str:
    """`BASE/N`: a Path for a local base, a URL string for a remote one."""
    return f"{base}/{number}" if is_remote(str(base)) else Path(base) / str(number)


def publish_proto(
    source: SavedModelFile,
    saved_model: Any,
    target: PublishTarget = DEFAULT_TARGET,
    *,
    extra_files: dict[str, bytes] | None = None,
    before_publish: Callable[[Path], None] | None = None,
    write_saved_model: Callable[[Path], None] | None = None,
    after_carry: Callable[[Path], None] | None = None,
) -> PublishedVersion:
    """Write `saved_model` as the new version `target` of `source`'s base (or of `target.base`).

    `extra_files` maps paths relative to the version folder (for example
    `assets.extra/tf_serving_warmup_requests`) to bytes; they replace files of
    the same path carried over from the source. `before_publish(staging_dir)`
    runs once the staged version is complete and before it is renamed into
    place (verification); if it raises, nothing is published.
    `write_saved_model(path)` writes (and fsyncs) the file instead of
    serializing `saved_model` (a splice, see `smsurgery.publishing.splice`).
    `after_carry(staging_dir)` rewrites carried files (prune's checkpoint).
    """
    base = target_base(source, target.base)
    require_intact(source)  # refuse a broken or escaping source before writing anything
    extra = dict(extra_files or {})
    remote = isinstance(base, str)
    if source.ref.origin is not None and (not remote or target.verify):
        from smsurgery.storage.mirror import materialize  # the real shards of a remote source: a local copy, or TF

        materialize(source.path, target.progress)
    # Into a bucket, shards are always linked locally: unchanged ones are copied inside the store, not uploaded.
    link = target.link or remote
    with stage_version(base, target.version, source_dir=source.path, progress=target.progress) as staging:
        carried = carry_over(source.path, staging.path, link=link, skip=set(extra), progress=target.progress)
        if after_carry is not None:
            after_carry(staging.path)
        if write_saved_model is not None:
            write_saved_model(staging.path / "saved_model.pb")
        else:
            write_bytes_synced(staging.path / "saved_model.pb", saved_model.SerializeToString(deterministic=True))
        for relative, data in extra.items():
            write_bytes_synced(staging.path / relative, data)
        _require_complete(staging.path, saved_model)
        if before_publish is not None:
            before_publish(staging.path)
    assert staging.version is not None
    return PublishedVersion(
        base=base, version=staging.version, path=version_location(base, staging.version), carried=carried
    )


def _require_complete(staged: Path, saved_model: Any) -> None:
    """The staged version passes the same integrity check as a source, before verification runs.

    A file the copy missed (a shard, an asset the graph reads) would make
    verification fail on a signature; the missing file is the cause to name.
    """
    try:
        require_intact(SavedModelFile(ModelRef(staged), saved_model))
    except CorruptModel as error:
        raise PublishError(f"the new version would be incomplete, nothing was published: {error.message}") from error
