"""Apply signature edits to a version and publish the result as the next version.

Three steps, each callable on its own: `Draft(read(path))` holds an edited
copy of a version's protos in memory (TensorFlow not imported), `.apply(...)`
chains edits on it, and `publish(draft, target)` validates the result (every
tensor exists, both loaders' views agree), stages the new version beside the
old ones, verifies it
against the old one through the TF1 loader (and `tf.saved_model.load` for
TF2 exports) *inside the staging folder*, and only then renames it into
place. Any error along the way leaves nothing behind. `edit(path, edits)` is
the one-call form of the three.

`Lineage` remembers where each signature and alias of the result came from,
so that verification compares `predict/y` of the new version with
`serving_default/y` of the old one after a rename.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import InvalidEdit, VerificationFailed
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import SavedModelFile, read
from smsurgery.edits import objectgraph
from smsurgery.edits.changes import ChangeKind, Effect
from smsurgery.edits.kinds import Edit
from smsurgery.edits.signatures import SIDES, Change, EditReport, user_keys
from smsurgery.edits.validate import problems, validate
from smsurgery.publishing import splice
from smsurgery.publishing.memoryguard import require_memory_for
from smsurgery.publishing.new_version import PublishedVersion, publish_proto
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget
from smsurgery.storage.transfer import TRANSFER, Transfer

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
        """Follow one change by the effect its kind declares (`smsurgery.edits.changes`)."""
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
    checks: list[str] = field(default_factory=list)  # independent checks of exposed inner tensors (in notes too)
    transfer: Transfer | None = None  # bytes moved to and inside object storage by this edit

    @property
    def path(self) -> Path | str | None:
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
            "transfer": self.transfer.to_json() if self.remote and self.transfer is not None else None,
        }  # fmt: skip

    @property
    def remote(self) -> bool:
        """The source or the new version is in object storage (then the JSON reports the bytes moved)."""
        return self.source.origin is not None or isinstance(self.published and self.published.path, str)


class Draft:
    """An edited copy of one meta graph of a source version, in memory: edits chain, publish once.

    `Draft(read(path)).apply(RenameSignature(...)).apply(AddOutput(...))`
    changes only this copy (the source's protos stay as read), and remembers
    what each edit changed and where every signature came from, so that
    `publish` can verify the result against the source.
    """

    def __init__(self, source: SavedModelFile, tags: tuple[str, ...] | None = None) -> None:
        self.source = source
        self.source_meta = source.meta_graph(tags)
        self._steps: list[Callable[[], None]] = []
        # Small mode: the edits seen so far touch small fields only; the draft holds the skimmed protos
        # (no graph parsed or copied) and publishing splices the source's graph bytes back in.
        self.small = source.skimmed is not None
        self._start(self.small)

    def _start(self, small: bool) -> None:
        self.small = small
        self._saved_model = protos.SavedModel()
        self._saved_model.CopyFrom(self.source.skim if small else self.source.proto)
        self._meta = self._saved_model.meta_graphs[self.source_meta.position]
        self.lineage = Lineage(self._meta)
        self.report = EditReport()
        self.edits: list[Edit] = []  # applied so far, for their checks of the published version

    @property
    def meta(self) -> Any:
        """The edited MetaGraphDef, graph included (reading it from outside leaves small mode)."""
        if self.small:
            self._full()
        return self._meta

    @property
    def saved_model(self) -> Any:
        """The edited SavedModel, graphs included (reading it from outside leaves small mode)."""
        if self.small:
            self._full()
        return self._saved_model

    def _full(self) -> None:
        """Leave small mode: copy the whole source and replay every step on it."""
        steps, self._steps = self._steps, []
        self._start(False)
        for step in steps:
            step()

    @property
    def tags(self) -> tuple[str, ...]:
        return self.source_meta.tags

    def apply(self, *edits: Edit) -> Draft:
        """Apply `edits` in order to this draft; returns the draft, so calls chain."""
        for item in edits:
            if not isinstance(item, Edit):
                raise InvalidEdit(f"not an edit: {item!r}", hint="use smsurgery.edits.kinds.RenameSignature(...) & co.")
            if self.small and not splice.can_splice(self.source.skimmed, self._meta, [item], drop_object_graph=False):
                self._full()
            self._run(lambda item=item: self._apply_one(item))
        return self

    def _run(self, step: Callable[[], None]) -> None:
        step()
        self._steps.append(step)
        if self.small and self._meta.HasField("graph_def"):  # it wrote into the graph after all
            self._full()

    def _apply_one(self, item: Edit) -> None:
        step = item.apply_to(self._saved_model, self._meta)
        self.edits.append(item)
        for change in step.changes:
            self.lineage.fold(change)
        self.report.extend(step)

    def drop_object_graph(self) -> Draft:
        """Write without the object graph, so `tf.saved_model.load` reads signature_def as the TF1 loader does."""
        self._run(self._drop_object_graph)
        return self

    def _drop_object_graph(self) -> None:
        if objectgraph.has_object_graph(self._meta):
            objectgraph.drop_object_graph(self._meta)
            self.report.changes.append(
                Change(ChangeKind.DROP_OBJECT_GRAPH, "", detail="object graph dropped: both loaders read signature_def")
            )
        else:
            self.report.warnings.append("no object graph to drop: this is a TF1 export")

    def writer(self) -> Callable[[Path], None] | None:
        """How publishing writes saved_model.pb: a splice while small (and provably consistent), else None."""
        if self.small and splice.small_edit_problems(self.source_meta.skim, self._meta):
            self._full()  # not provably consistent without the graph: the full validation judges it
        if not self.small:
            validate(self._meta, lambda: problems(self.source_meta.proto))  # source's problems only if needed
            return None
        return functools.partial(splice.write_spliced, self.source.skimmed, self._saved_model)


def _require_memory_to_verify(draft: Draft) -> None:
    """Verification loads one version at a time, about the source's size: refuse before writing anything."""
    source = draft.source
    require_memory_for(source.path, source.skimmed, draft.source_meta.position, what=f"the edit of {source.ref}")


def publish(draft: Draft, target: PublishTarget = DEFAULT_TARGET) -> EditResult:
    """Validate `draft`, stage it as a new version, verify it against its source, then make it visible.

    Verification compares every signature the draft kept with the one of the
    source it came from (exactly, unless `target` sets tolerances); nothing
    is published if it fails.
    """
    writer = draft.writer()
    lineage = draft.lineage
    start = TRANSFER.snapshot()
    result = EditResult(source=draft.source.ref, tags=lineage.tags, published=None, report=draft.report)
    if not draft.report.changes and draft.saved_model == draft.source.proto:  # a silent change is still verified
        draft.report.warnings.append("nothing to change: no new version published")
        return result
    if target.verify:
        _require_memory_to_verify(draft)
    rtol, atol = target.tolerances(0.0, 0.0)
    source, source_tags, tf2 = draft.source.path, draft.tags, draft.source_meta.kind == "tf2"

    def before_publish(staging: Path) -> None:
        from smsurgery.graph.verify import verify_edit

        for new_tags in [lineage.tags, *lineage.added_tag_sets]:
            verification = verify_edit(
                source, staging, source_tags, lineage.pairs(draft._meta), tf2=tf2, rtol=rtol, atol=atol,
                new_tags=new_tags,
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
            p for e in draft.edits for p in e.check_published(source, source_tags, staging, lineage.tags, tf2=tf2)
        ]
        if broken:
            raise VerificationFailed("the edited model does not do what the edit promised: " + "; ".join(broken))
        from smsurgery.graph.inner_check import check_exposed  # new outputs from inside functions

        result.checks = check_exposed(source, staging, source_tags, lineage.pairs(draft._meta), lineage.tags)
        result.verification.notes.extend(result.checks)

    def after_carry(staging: Path) -> None:
        for item in draft.edits:
            item.rewrite_files(source, staging, draft._saved_model)

    result.published = publish_proto(
        draft.source, draft._saved_model, target, before_publish=before_publish if target.verify else None,
        write_saved_model=writer, after_carry=after_carry,
    )  # fmt: skip
    result.transfer = TRANSFER.since(start)
    if result.verification is not None:  # it ran in the staging folder; report the version it became
        result.verification.b = str(result.published.path)
    return result


def edit(
    path: str | Path | ModelRef,
    edits: Sequence[Edit],
    *,
    tags: tuple[str, ...] | None = None,
    target: PublishTarget = DEFAULT_TARGET,
    drop_object_graph: bool = False,
) -> EditResult:
    """Read `path`, apply `edits` to its meta graph `tags`, publish the result as `target`: the one-call form."""
    if not edits and not drop_object_graph:
        raise InvalidEdit("no edits given")
    start = TRANSFER.snapshot()  # reading a remote source downloads too
    draft = Draft(read(path), tags)
    if drop_object_graph:
        draft.drop_object_graph()
    result = publish(draft.apply(*edits), target)
    result.transfer = TRANSFER.since(start)
    return result
