"""Apply signature edits to a version and publish the result as the next version.

The one entry point, `edit(path, [RenameSignature("serving_default", "predict"), ...])`,
reads the source version (TensorFlow not imported), applies the edits to a
copy of its protos, validates the result (every tensor exists, both loaders'
views agree), stages the new version beside the old ones, verifies it
against the old one through the TF1 loader (and `tf.saved_model.load` for
TF2 exports) *inside the staging folder*, and only then renames it into
place. Any error along the way leaves nothing behind.

`Lineage` remembers where each signature and alias of the result came from,
so that verification compares `predict/y` of the new version with
`serving_default/y` of the old one after a rename.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery import objectgraph, protos
from smsurgery.changes import ChangeKind, Effect
from smsurgery.edits import Edit
from smsurgery.errors import InvalidEdit, VerificationFailed
from smsurgery.layout import ModelRef
from smsurgery.model import read
from smsurgery.publish import ProgressCallback
from smsurgery.reexport import PublishedVersion, publish_proto
from smsurgery.signatures import SIDES, Change, EditReport, user_keys
from smsurgery.validate import problems, validate

EDIT_SCHEMA = "smsurgery.edit/1"


class Lineage:
    """Current signature/alias -> the one of the source it came from (None: new or repointed)."""

    def __init__(self, meta: Any) -> None:
        self.tags: tuple[str, ...] = tuple(meta.meta_info_def.tags)  # the edited meta graph's, in the result
        self.added_tag_sets: list[tuple[str, ...]] = []  # copies of it under other tag sets
        self.signatures: dict[str, str | None] = {k: k for k in user_keys(meta)}
        self.aliases: dict[tuple[str, str, str], str | None] = {
            (key, side, alias): alias
            for key in self.signatures
            for side in SIDES
            for alias in getattr(meta.signature_def[key], side)
        }

    def _move(self, old: str, new: str, *, copy: bool) -> None:
        self.signatures[new] = self.signatures[old] if copy else self.signatures.pop(old)
        for (key, side, alias), origin in list(self.aliases.items()):
            if key == old:
                if not copy:
                    del self.aliases[(key, side, alias)]
                self.aliases[(new, side, alias)] = origin

    def fold(self, change: Change) -> None:
        """Follow one change by the effect its kind declares (`smsurgery.changes`)."""
        _FOLDS[change.kind.effect](self, change)

    def _retag(self, change: Change) -> None:
        assert change.new is not None
        self.tags = tuple(change.new.split(","))

    def _add_tag_set(self, change: Change) -> None:
        assert change.new is not None
        self.added_tag_sets.append(tuple(change.new.split(",")))

    def _retype_input(self, change: Change) -> None:
        self.signatures[change.signature] = None  # run, not compared; Edit.check_published compares

    def _drop_signature(self, change: Change) -> None:
        self.signatures.pop(change.signature, None)
        self.aliases = {k: v for k, v in self.aliases.items() if k[0] != change.signature}

    def _new_signature(self, change: Change) -> None:
        self.signatures[change.signature] = None

    def _rename_alias(self, change: Change) -> None:
        assert change.side and change.old and change.new
        key, side = change.signature, change.side
        self.aliases[(key, side, change.new)] = self.aliases.pop((key, side, change.old), None)

    def _new_alias(self, change: Change) -> None:
        assert change.side and change.alias
        self.aliases[(change.signature, change.side, change.alias)] = None

    def _drop_alias(self, change: Change) -> None:
        assert change.alias
        self.aliases.pop((change.signature, change.side or "outputs", change.alias), None)

    def pairs(self, meta: Any) -> list[Any]:
        """What verification compares: (old key, new key, alias maps) for every signature of `meta`."""
        from smsurgery.graph.verify import SignaturePair

        result = []
        for key in user_keys(meta):
            signature = meta.signature_def[key]
            maps = {
                side: {alias: self.aliases.get((key, side, alias)) for alias in getattr(signature, side)}
                for side in SIDES
            }
            result.append(SignaturePair(self.signatures.get(key), key, maps["inputs"], maps["outputs"]))
        return result


def _moved(lineage: Lineage, change: Change, *, copy: bool) -> None:
    assert change.new is not None
    lineage._move(change.signature, change.new, copy=copy)


_FOLDS: dict[Effect, Callable[[Lineage, Change], None]] = {
    Effect.NONE: lambda lineage, change: None,
    Effect.MOVE_SIGNATURE: lambda lineage, change: _moved(lineage, change, copy=False),
    Effect.COPY_SIGNATURE: lambda lineage, change: _moved(lineage, change, copy=True),
    Effect.DROP_SIGNATURE: Lineage._drop_signature,
    Effect.NEW_SIGNATURE: Lineage._new_signature,
    Effect.RENAME_ALIAS: Lineage._rename_alias,
    Effect.NEW_ALIAS: Lineage._new_alias,
    Effect.DROP_ALIAS: Lineage._drop_alias,
    Effect.RETAG: Lineage._retag,
    Effect.ADD_TAG_SET: Lineage._add_tag_set,
    Effect.RETYPE_INPUT: Lineage._retype_input,
}


@dataclass
class EditResult:
    """What `edit` did: the new version, the changes, warnings and the verification report."""

    source: ModelRef
    tags: tuple[str, ...]
    published: PublishedVersion | None
    report: EditReport
    verification: Any = None  # graph.verify.ComparisonReport, when verification ran

    @property
    def path(self) -> Path | None:
        return self.published.path if self.published else None

    def to_json(self) -> dict[str, Any]:
        published, carried = self.published, self.published.carried if self.published else None
        return {
            "schema": EDIT_SCHEMA,
            "source": str(self.source),
            "tags": list(self.tags),
            "path": str(published.path) if published else None,
            "base": str(published.base) if published else None,
            "version": published.version if published else None,
            "changes": [c.to_json() for c in self.report.changes],
            "warnings": list(self.report.warnings),
            "carried": {
                "linked": carried.linked, "copied": carried.copied,
                "bytes_linked": carried.bytes_linked, "bytes_copied": carried.bytes_copied,
            } if carried else None,
            "verification": self.verification.to_json() if self.verification is not None else None,
        }  # fmt: skip


def apply_edits(
    meta: Any, edits: Sequence[Edit], *, drop_object_graph: bool = False, saved: Any | None = None
) -> tuple[EditReport, Lineage]:
    """Apply `edits` in order to MetaGraphDef `meta` (in place); the combined report and lineage.

    `saved`: the SavedModel that holds `meta`, for edits of its tag sets.
    """
    lineage = Lineage(meta)
    report = EditReport()
    if drop_object_graph:
        if objectgraph.has_object_graph(meta):
            objectgraph.drop_object_graph(meta)
            report.changes.append(
                Change(ChangeKind.DROP_OBJECT_GRAPH, "", detail="object graph dropped: both loaders read signature_def")
            )
        else:
            report.warnings.append("no object graph to drop: this is a TF1 export")
    for item in edits:
        if not isinstance(item, Edit):
            raise InvalidEdit(f"not an edit: {item!r}", hint="use smsurgery.edits.RenameSignature(...) & co.")
        step = item.apply_to(saved, meta)
        for change in step.changes:
            lineage.fold(change)
        report.extend(step)
    return report, lineage


def edit(
    path: str | Path | ModelRef,
    edits: Sequence[Edit],
    *,
    tags: tuple[str, ...] | None = None,
    out: str | Path | None = None,
    version: int | None = None,
    verify: bool = True,
    link: bool = True,
    drop_object_graph: bool = False,
    progress: ProgressCallback | None = None,
) -> EditResult:
    """Apply `edits` to the meta graph `tags` of `path` and publish the result as a new version.

    `out` publishes into another model base; `version` asks for a number
    (refused if taken); `link=False` copies variable shards instead of
    hard-linking them; `verify=False` skips running old and new.
    """
    if not edits and not drop_object_graph:
        raise InvalidEdit("no edits given")
    model = read(path)
    meta_view = model.meta_graph(tags)
    saved = protos.SavedModel()
    saved.CopyFrom(model.proto)
    position = [tuple(m.meta_info_def.tags) for m in model.proto.meta_graphs].index(meta_view.tags)
    meta = saved.meta_graphs[position]
    report, lineage = apply_edits(meta, edits, drop_object_graph=drop_object_graph, saved=saved)
    validate(meta, problems(meta_view.proto))
    result = EditResult(source=model.ref, tags=lineage.tags, published=None, report=report)
    if not report.changes and saved == model.proto:  # an edit that changes without saying so is still verified
        report.warnings.append("nothing to change: no new version published")
        return result

    tf2 = meta_view.kind == "tf2"

    def before_publish(staging: Path) -> None:
        from smsurgery.graph.verify import verify_edit

        for new_tags in [lineage.tags, *lineage.added_tag_sets]:
            verification = verify_edit(
                model.path, staging, meta_view.tags, lineage.pairs(meta), tf2=tf2, new_tags=new_tags,
            )  # fmt: skip
            if result.verification is None:
                result.verification = verification
            else:
                result.verification.notes.append(f"meta graph [{','.join(new_tags)}] verified too")
            if not verification.ok:
                raise VerificationFailed(
                    "the edited model does not compute what the source did, nothing was published: "
                    + "; ".join(verification.failures())
                )
        broken = [
            p
            for item in edits
            for p in item.check_published(model.path, meta_view.tags, staging, lineage.tags, tf2=tf2)
        ]
        if broken:
            raise VerificationFailed("the edited model does not do what the edit promised: " + "; ".join(broken))

    result.published = publish_proto(
        model, saved, out_base=out, version=version, link=link, progress=progress,
        before_publish=before_publish if verify else None,
    )  # fmt: skip
    return result
