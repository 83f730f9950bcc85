"""Re-export a TF2 model through TensorFlow so that the TF1 session loader (Serving) runs it.

Keras 3 models saved with `tf.saved_model.save` run under `tf.saved_model.load`
but not under the TF1 loader (see `smsurgery.inspect.restore_check`). Loading the
object graph and saving the loaded object again with every signature
(`tf.saved_model.save(loaded, signatures=loaded.signatures)`) writes one set
of variable handles that the saver restores: observed with TF 2.21, the
result runs under both loaders with the same keys, aliases and values.
Verification compares, per signature, the source under `tf.saved_model.load`
(the only loader that runs it) with the new version under both loaders.

`tf.saved_model.load` reads the object graph only when a SavedModel has one
meta graph (a second tag set from `tags add` makes it load the TF1 way, and
re-saving that object writes no variables). So a source with more meta graphs
is loaded from a scratch copy holding only the chosen one, and the tag sets of
the meta graphs equal to it apart from tags are given back to the new version
as copies. Meta graphs that differ are not re-exported: refused unless
`--tags` names the one to keep.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import SmsurgeryError, UnsupportedModel, VerificationFailed
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import MetaGraph, SavedModelFile, read, tag_set_text
from smsurgery.edits.tags import add_tags, tag_set_groups
from smsurgery.graph.export import publish_saved, rewrite_staged
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import compare_arrays
from smsurgery.publishing.new_version import PublishedVersion, target_base
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget
from smsurgery.serving.samples import sample_inputs


@dataclass
class ReexportResult:
    source: ModelRef
    published: PublishedVersion | None
    notes: list[str] = field(default_factory=list)


def _compare(loaded: Any, meta: MetaGraph, staging: Path, notes: list[str]) -> list[str]:
    """Problems of `staging` against the source's tf.saved_model.load view, per signature."""
    problems, plans = [], []
    for key in meta.signature_keys():
        feeds = sample_inputs(meta.signature(key), batch=2)
        try:
            plans.append((key, feeds, run_tf2(loaded, key, feeds)))
        except SmsurgeryError as error:
            notes.append(f"'{key}' did not run on generated inputs in the source either: {first_line(error)}")
    new_tf2 = load_tf2(staging, ["serve"])
    with load_session(staging, ["serve"]) as session:
        for key, feeds, expected in plans:
            for loader, run in (("TF1 loader", session.run), ("tf.saved_model.load", None)):
                try:
                    values = run(key, feeds) if run else run_tf2(new_tf2, key, feeds)
                except SmsurgeryError as error:
                    problems.append(f"'{key}' fails under the {loader}: {error}")
                    continue
                for alias, value in expected.items():
                    compared = compare_arrays(value, values[alias])
                    if not compared:
                        problems.append(f"'{key}/{alias}' under the {loader} differs ({compared.detail})")
    return problems


def _sets(tag_sets: list[tuple[str, ...]]) -> str:
    return ", ".join("[" + tag_set_text(t) + "]" for t in tag_sets)


def _carried_tag_sets(
    model: SavedModelFile, meta: MetaGraph, explicit: bool, notes: list[str]
) -> list[tuple[str, ...]]:
    """Tag sets besides [serve] that the new version gets as copies; refuse meta graphs that would be lost."""
    if len(model.tag_sets) == 1:
        return []
    same, other = tag_set_groups(model.proto, meta.proto)
    if other and not explicit:
        raise UnsupportedModel(
            f"{model.ref} has meta graphs that differ beyond their tags ({_sets(same[:1] + other)}): "
            "reexport writes one meta graph",
            hint=f"--tags {','.join(meta.tags)} re-exports only that one; the others are not carried",
        )
    if other:
        notes.append(f"not carried (they differ from [{tag_set_text(meta.tags)}]): {_sets(other)}")
    carried = {frozenset(t): t for t in same if set(t) != {"serve"}}
    return list(carried.values())


@contextlib.contextmanager
def _single_meta_graph(model: SavedModelFile, meta: MetaGraph) -> Iterator[Path]:
    """The version folder, or a scratch copy whose saved_model.pb holds only `meta` (files linked, not copied).

    Kept open until the new version is written: `tf.saved_model.save` copies
    the loaded model's assets from their paths in this folder.
    """
    if len(model.tag_sets) == 1:
        yield model.path
        return
    from smsurgery.core.protos import SavedModel

    with tempfile.TemporaryDirectory(prefix="smsurgery-reexport-") as scratch:
        single = SavedModel()
        single.saved_model_schema_version = model.proto.saved_model_schema_version
        single.meta_graphs.add().CopyFrom(meta.proto)
        Path(scratch, "saved_model.pb").write_bytes(single.SerializeToString(deterministic=True))
        for entry in model.path.iterdir():
            if entry.name not in ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb"):
                os.symlink(os.path.realpath(entry), Path(scratch, entry.name))
        yield Path(scratch)


def reexport(
    path: str | Path, *, tags: tuple[str, ...] | None = None, target: PublishTarget = DEFAULT_TARGET
) -> ReexportResult:
    """Load `path` with tf.saved_model.load and save it again, every signature kept, as a new version."""
    model = read(path)
    meta = model.meta_graph(tags)
    if meta.kind != "tf2":
        raise UnsupportedModel(
            f"{model.ref} is a TF1 export: the TF1 loader reads it as written, there is nothing to re-export"
        )
    require_intact(model)
    base = target_base(model, target.base)
    result = ReexportResult(source=model.ref, published=None)
    carried = _carried_tag_sets(model, meta, tags is not None, result.notes)
    with _single_meta_graph(model, meta) as folder:
        loaded = load_tf2(folder, meta.tags, links_checked=folder != model.path)
        keys = [k for k in loaded.signatures if k != INIT_OP_SIGNATURE]
        if sorted(keys) != meta.signature_keys():
            raise UnsupportedModel(
                f"tf.saved_model.load lists signatures {sorted(keys)}, signature_def {meta.signature_keys()}"
            )
        if tuple(meta.tags) != ("serve",):
            result.notes.append(
                f"tf.saved_model.save tags the new version [serve] (the source: [{tag_set_text(meta.tags)}])"
            )

        def finish(staging: Path) -> None:
            if carried:
                rewrite_staged(staging, lambda saved: _give_tag_sets(saved, carried))
            if target.verify:
                problems = _compare(loaded, meta, staging, result.notes)
                if problems:
                    raise VerificationFailed("the re-exported model does not match the source: " + "; ".join(problems))

        signatures = {key: loaded.signatures[key] for key in keys}
        result.published = publish_saved(
            loaded, base, signatures=signatures, version=target.version, carry_from=model.path, before_publish=finish
        )
    return result


def _give_tag_sets(saved: Any, tag_sets: list[tuple[str, ...]]) -> None:
    """Copies of the written meta graph under the source's other tag sets (what `tags add` had made)."""
    for tag_set in tag_sets:
        add_tags(saved, saved.meta_graphs[0], tag_set)
