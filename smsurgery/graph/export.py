"""Publish a live session (or a TF2 object) as a new version, atomically.

Two writers, one contract: the new version is built in a staging folder
(`publish.staged_version`), optionally checked there by the caller (both
loaders can run it before anyone else can see it), and renamed into place;
on any error nothing appears and the source is untouched.

- `publish_session`: `SavedModelBuilder` from a `tf.compat.v1` session. What
  makes a re-export keep working, learnt the hard way (see
  shared/SAVEDMODEL-FACTS.md): pass the `Saver` built from the source's
  `saver_def` (otherwise `variables/` comes out empty); pass the init op as
  `main_op` with the graph's own main-op collections emptied for the
  duration (the builder refuses a graph that already holds one); pass the
  asset path constants as `assets_collection` with the graph's
  `saved_model_assets` collection emptied (the builder appends to it).
  The graph's collections are put back afterwards, so the session stays
  usable and can be published again.
- `publish_saved`: `tf.saved_model.save` of a TF2 object with an explicit
  signature map, for edits that keep a TF2 export a TF2 export.

Both carry the source's `assets.extra/` (warmup requests, Serving config)
over unless told to skip files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from smsurgery.core.errors import PublishError
from smsurgery.graph.editable import ASSETS_KEY, MAIN_OP_KEYS, EditableGraph
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, import_tf
from smsurgery.publishing.atomic import CarryReport, carry_over
from smsurgery.publishing.new_version import PublishedVersion, stage_version, version_location
from smsurgery.storage.url import is_remote

Check = Callable[[Path], None]  # runs on the complete staging folder; raises to abort the publish
EXTRA = "assets.extra"


@contextlib.contextmanager
def _collections_cleared(graph: Any, keys: Iterable[str]) -> Iterator[None]:
    """Empty some collections of `graph` for a while, then put their old contents back."""
    saved = {key: list(graph.get_collection(key)) for key in keys}
    try:
        for key in saved:
            graph.clear_collection(key)
        yield
    finally:
        for key, values in saved.items():
            graph.clear_collection(key)
            for value in values:
                graph.add_to_collection(key, value)


def _published(base: Path | str, version: int | None, carried: CarryReport) -> PublishedVersion:
    if version is None:
        raise PublishError(f"publishing into {base} returned no version number")
    return PublishedVersion(base=base, version=version, path=version_location(base, version), carried=carried)


def _base(base: str | Path) -> Path | str:
    """A URL stays a string (`Path` would fold `s3://` into `s3:/`); a local base becomes a Path."""
    return str(base) if is_remote(str(base)) else Path(base)


def carry_extra(source: Path | None, target: Path, skip: Iterable[str] = ()) -> CarryReport:
    """Copy `source/assets.extra/` into `target/assets.extra/`, minus `skip` (paths relative to it)."""
    if source is None or not (source / EXTRA).is_dir():
        return CarryReport()
    return carry_over(source / EXTRA, target / EXTRA, link=False, skip=set(skip))


def publish_session(
    session: Any,
    base: str | Path,
    *,
    tags: Sequence[str],
    signature_def_map: Mapping[str, Any],
    version: int | None = None,
    saver: Any | None = None,
    main_op: Any | None = None,
    assets: Sequence[Any] | None = None,
    carry_from: Path | None = None,
    carry_skip: Iterable[str] = (),
    before_publish: Check | None = None,
) -> PublishedVersion:
    """Write `session`'s graph and variables as a new version of `base` with `SavedModelBuilder`.

    `signature_def_map`: key -> TensorFlow `SignatureDef` (an entry
    `__saved_model_init_op` is dropped: the init op goes in as `main_op`).
    `saver`: the `tf.compat.v1.train.Saver` to write variables with, normally
    `Saver(saver_def=source_meta_graph.saver_def)`; None builds a fresh one
    over all variables. `main_op`: an Operation run at load time (table
    initializers, ...). `assets`: string `Const` tensors holding asset file
    paths; the files are copied into `assets/`. `carry_from`: a version
    folder whose `assets.extra/` comes along (minus `carry_skip`).
    `before_publish(staging_dir)` runs on the finished staging folder; if it
    raises, nothing is published.
    """
    base_path = _base(base)
    with stage_version(base_path, version, source_dir=carry_from) as staging:
        write_session(
            session,
            staging.path,
            tags=tags,
            signature_def_map=signature_def_map,
            saver=saver,
            main_op=main_op,
            assets=assets,
        )
        carried = carry_extra(carry_from, staging.path, carry_skip)
        if before_publish is not None:
            before_publish(staging.path)
    return _published(base_path, staging.version, carried)


def write_session(
    session: Any,
    path: Path,
    *,
    tags: Sequence[str],
    signature_def_map: Mapping[str, Any],
    saver: Any | None = None,
    main_op: Any | None = None,
    assets: Sequence[Any] | None = None,
    clear_devices: bool = False,
    strip_default_attrs: bool = False,
) -> None:
    """`SavedModelBuilder` into `path`, an existing empty folder (a staging folder).

    The writing half of `publish_session`, for callers that manage the
    staging folder themselves (convert verifies the written folder before it
    is published). `clear_devices`/`strip_default_attrs` suit graphs from
    elsewhere (a training checkpoint); an edited served model keeps both.
    """
    tf = import_tf()
    signatures = {k: v for k, v in signature_def_map.items() if k != INIT_OP_SIGNATURE}
    graph = session.graph
    with graph.as_default(), _collections_cleared(graph, (*MAIN_OP_KEYS, ASSETS_KEY)):
        try:
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session,
                list(tags),
                signature_def_map=signatures,
                assets_collection=list(assets) if assets else None,
                main_op=main_op,
                saver=saver,
                strip_default_attrs=strip_default_attrs,
                clear_devices=clear_devices,
            )
            builder.save()
        except (ValueError, TypeError, AssertionError, tf.errors.OpError) as error:
            raise PublishError(f"SavedModelBuilder could not write the new version: {first_line(error)}") from error


def publish_editable(
    editable: EditableGraph,
    base: str | Path,
    signature_def_map: Mapping[str, Any],
    *,
    version: int | None = None,
    carry_skip: Iterable[str] = (),
    before_publish: Check | None = None,
) -> PublishedVersion:
    """`publish_session` with the saver, init op, assets, tags and assets.extra of the source model."""
    return publish_session(
        editable.session,
        base,
        tags=editable.tags,
        signature_def_map=signature_def_map,
        version=version,
        saver=editable.saver,
        main_op=editable.init_op,
        assets=editable.asset_tensors(),
        carry_from=editable.source,
        carry_skip=carry_skip,
        before_publish=before_publish,
    )


def publish_saved(
    obj: Any,
    base: str | Path,
    *,
    signatures: Mapping[str, Any],
    version: int | None = None,
    carry_from: Path | None = None,
    carry_skip: Iterable[str] = (),
    before_publish: Check | None = None,
) -> PublishedVersion:
    """Write a TF2 object with `tf.saved_model.save` and exactly these signatures as a new version.

    `signatures` must name every signature the new version should have:
    `tf.saved_model.save` keeps no signature that is not passed.
    """
    base_path = _base(base)
    with stage_version(base_path, version, source_dir=carry_from) as staging:
        write_saved(obj, staging.path, signatures=signatures)
        carried = carry_extra(carry_from, staging.path, carry_skip)
        if before_publish is not None:
            before_publish(staging.path)
    return _published(base_path, staging.version, carried)


def write_saved(obj: Any, path: Path, *, signatures: Mapping[str, Any]) -> None:
    """`tf.saved_model.save` into `path` (a staging folder): the writing half of `publish_saved`."""
    tf = import_tf()
    try:
        tf.saved_model.save(obj, str(path), signatures=dict(signatures))
    except (ValueError, TypeError, tf.errors.OpError) as error:
        raise PublishError(f"tf.saved_model.save could not write the new version: {first_line(error)}") from error


def rewrite_staged(staging: Path, change: Callable[[Any], None]) -> None:
    """Apply `change` to the staged saved_model.pb that `tf.saved_model.save` wrote (a proto fix-up).

    The staged fingerprint.pb hashes the old saved_model.pb, so it is removed
    (loaders do not need it; smsurgery never carries it over either).
    """
    from smsurgery.core.protos import SavedModel

    path = staging / "saved_model.pb"
    saved_model = SavedModel()
    saved_model.ParseFromString(path.read_bytes())
    change(saved_model)
    path.write_bytes(saved_model.SerializeToString(deterministic=True))
    (staging / "fingerprint.pb").unlink(missing_ok=True)
