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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.core.errors import CorruptModel, PublishError
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import SavedModelFile
from smsurgery.publishing.atomic import CarryReport, carry_over, staged_version, write_bytes_synced
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget
from smsurgery.storage.mirror import materialize
from smsurgery.storage.publish import remote_staged_version
from smsurgery.storage.url import is_remote


@dataclass(frozen=True)
class PublishedVersion:
    """The version written; `base` and `path` are URLs (str) when it went into object storage."""

    base: Path | str
    version: int
    path: Path | str
    carried: CarryReport


def target_base(source: SavedModelFile, out_base: str | Path | None, *, remote_ok: bool = False) -> Path | str:
    """Where the new version goes: `--out`, else the source's own model base (a URL for a remote source).

    Only the proto publisher writes into object storage (`remote_ok`); the
    TensorFlow routes (attach, re-save) refuse a remote base in one line.
    """
    where = str(out_base) if out_base is not None else source.ref.remote_base
    if where is not None and is_remote(where):
        if not remote_ok:
            raise PublishError(
                f"this command cannot publish into object storage ({where}) yet",
                hint="publish into a local base with --out DIR, then upload it",
            )
        return where
    if out_base is not None:
        return Path(out_base)
    if source.ref.base is None:
        raise PublishError(
            f"{source.ref.version_dir} is not inside a model base (its name is not an integer)",
            hint="pass --out BASE to choose where the new version goes",
        )
    return source.ref.base


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
    base = target_base(source, target.base, remote_ok=True)
    require_intact(source)  # refuse a broken or escaping source before writing anything
    extra = dict(extra_files or {})
    remote = isinstance(base, str)
    if not remote or target.verify:  # a local copy, or TensorFlow verifying: the real shards of a remote source
        materialize(source.path, target.progress)
    staged = remote_staged_version(base, target.version, source.path, target.progress) if remote else None
    # Into a bucket, shards are always linked locally: unchanged ones are copied inside the store, not uploaded.
    link = target.link or remote
    with staged or staged_version(Path(base), target.version) as staging:
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
    path = f"{base}/{staging.version}" if remote else Path(base) / str(staging.version)
    return PublishedVersion(base=base, version=staging.version, path=path, carried=carried)


def _require_complete(staged: Path, saved_model: Any) -> None:
    """The staged version passes the same integrity check as a source, before verification runs.

    A file the copy missed (a shard, an asset the graph reads) would make
    verification fail on a signature; the missing file is the cause to name.
    """
    try:
        require_intact(SavedModelFile(ModelRef(staged), saved_model))
    except CorruptModel as error:
        raise PublishError(f"the new version would be incomplete, nothing was published: {error.message}") from error
