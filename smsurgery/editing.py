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

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery import objectgraph, protos, splice
from smsurgery.edits import Edit
from smsurgery.errors import InvalidEdit, VerificationFailed
from smsurgery.layout import ModelRef
from smsurgery.memoryguard import require_memory_for
from smsurgery.model import MetaGraph, SavedModelFile, read
from smsurgery.publish import ProgressCallback
from smsurgery.reexport import PublishedVersion, publish_proto
from smsurgery.signatures import SIDES, Change, EditReport, user_keys
from smsurgery.validate import problems, validate

EDIT_SCHEMA = "smsurgery.edit/1"


class Lineage:
    """Current signature/alias -> the one of the source it came from (None: new or repointed)."""

    def __init__(self, meta: Any) -> None:
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
        key, kind = change.signature, change.kind
        if kind in ("rename_signature", "copy_signature"):
            assert change.new is not None
            self._move(key, change.new, copy=kind == "copy_signature")
        elif kind == "remove_signature":
            self.signatures.pop(key, None)
            self.aliases = {k: v for k, v in self.aliases.items() if k[0] != key}
        elif kind == "add_signature":
            self.signatures[key] = None
        elif kind == "rename_alias":
            assert change.side and change.old and change.new
            self.aliases[(key, change.side, change.new)] = self.aliases.pop((key, change.side, change.old), None)
        elif kind in ("add_output", "repoint"):
            assert change.side and change.alias
            self.aliases[(key, change.side, change.alias)] = None
        elif kind == "remove_output":
            assert change.alias
            self.aliases.pop((key, "outputs", change.alias), None)

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


def apply_edits(meta: Any, edits: Sequence[Edit], *, drop_object_graph: bool = False) -> tuple[EditReport, Lineage]:
    """Apply `edits` in order to MetaGraphDef `meta` (in place); the combined report and lineage."""
    lineage = Lineage(meta)
    report = EditReport()
    if drop_object_graph:
        if objectgraph.has_object_graph(meta):
            objectgraph.drop_object_graph(meta)
            report.changes.append(
                Change("drop_object_graph", "", detail="object graph dropped: both loaders read signature_def")
            )
        else:
            report.warnings.append("no object graph to drop: this is a TF1 export")
    for item in edits:
        if not isinstance(item, Edit):
            raise InvalidEdit(f"not an edit: {item!r}", hint="use smsurgery.edits.RenameSignature(...) & co.")
        step = item.apply(meta)
        for change in step.changes:
            lineage.fold(change)
        report.extend(step)
    return report, lineage


def _apply_small(
    model: SavedModelFile, meta_view: MetaGraph, edits: Sequence[Edit], drop_object_graph: bool
) -> tuple[Any, Any, EditReport, Lineage] | None:
    """Apply edits that touch small fields only to the skimmed protos (no graph parsed or copied).

    None when the edits may need the graph (the full route then applies them).
    """
    if not splice.can_splice(model.skimmed, meta_view.skim, edits, drop_object_graph=drop_object_graph):
        return None
    saved = protos.SavedModel()
    saved.CopyFrom(model.skim)
    meta = saved.meta_graphs[meta_view.position]
    report, lineage = apply_edits(meta, edits, drop_object_graph=drop_object_graph)
    found = splice.small_edit_problems(meta_view.skim, meta)
    if meta.HasField("graph_def") or found:
        return None  # not provably graph-free after all: redo it the full way, which judges it
    return saved, meta, report, lineage


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
    spliced = _apply_small(model, meta_view, edits, drop_object_graph)
    if spliced is not None:
        saved, meta, report, lineage = spliced
        writer = functools.partial(splice.write_spliced, model.skimmed, saved)
    else:
        saved = protos.SavedModel()
        saved.CopyFrom(model.proto)
        meta = saved.meta_graphs[meta_view.position]
        report, lineage = apply_edits(meta, edits, drop_object_graph=drop_object_graph)
        validate(meta, lambda: problems(meta_view.proto))  # the source's problems only if the edit has some
        writer = None
    if verify:  # verification loads one version at a time, each about the source's size: refuse before writing
        require_memory_for(model.path, model.skimmed, meta_view.position, what=f"the edit of {model.ref}")
    result = EditResult(source=model.ref, tags=meta_view.tags, published=None, report=report)

    def before_publish(staging: Path) -> None:
        from smsurgery.graph.verify import verify_edit

        result.verification = verify_edit(
            model.path, staging, meta_view.tags, lineage.pairs(meta), tf2=meta_view.kind == "tf2"
        )
        if not result.verification.ok:
            raise VerificationFailed(
                "the edited model does not compute what the source did, nothing was published: "
                + "; ".join(result.verification.failures())
            )

    result.published = publish_proto(
        model, saved, out_base=out, version=version, link=link, progress=progress,
        before_publish=before_publish if verify else None, write_saved_model=writer,
    )  # fmt: skip
    return result
