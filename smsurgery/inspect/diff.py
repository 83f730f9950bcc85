"""Compare two versions of a model, with a verdict per change.

Before version N+1 rolls out, the question is whether any client breaks. The
answer comes from the protos alone (with `deep`, also the checkpoint index and
the asset files), never the TensorFlow runtime, so a CI gate costs ~0.2 s.
Verdicts: `breaking` (a client that worked may now fail), `compatible`
(existing clients keep working), `internal` (invisible to clients).

Renames cannot be known from two versions: a rename is a removal plus an
addition. Where exactly one removed item matches exactly one added item in
all a client sees, both halves carry the note "renamed (likely)" and stay
breaking, since clients that use the old name fail.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import SignatureNotFound, TagSetNotFound, VersionNotFound, listing
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef, list_versions
from smsurgery.core.model import (
    DEFAULT_TAGS,
    INIT_OP_SIGNATURE,
    MetaGraph,
    SavedModelFile,
    SignatureView,
    TensorView,
    locate,
    read,
    tag_set_text,
)
from smsurgery.inspect.diff_changes import (
    BREAKING,
    COMPATIBLE,
    INTERNAL,
    Change,
    compare_members,
    exit_status,
    overall_verdict,
    presence,
    summary,
)
from smsurgery.inspect.diff_deep import compare_files, compare_variables

DIFF_SCHEMA = "smsurgery.diff/1"


@dataclass(frozen=True)
class DiffReport:
    """What `smsurgery diff` reports; `to_json()` is the documented schema."""

    old: dict[str, Any]
    new: dict[str, Any]
    tags: tuple[str, ...]
    signature: str | None
    deep: bool
    changes: list[Change] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return summary(self.changes)

    @property
    def verdict(self) -> str:
        return overall_verdict(self.changes)

    @property
    def exit_status(self) -> int:
        return exit_status(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DIFF_SCHEMA,
            "old": self.old,
            "new": self.new,
            "tags": list(self.tags),
            "signature": self.signature,
            "deep": self.deep,
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.changes],
        }


# ---- entry points ----


def diff(
    old: str | Path,
    new: str | Path | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    signature: str | None = None,
    deep: bool = False,
) -> DiffReport:
    """`smsurgery diff OLD NEW`, or `diff BASE` (its newest version against the one before).

    Each side is refused as `show` refuses it (a missing shard, an escaping
    symlink): a CI gate must not pass a version that cannot be served.
    """
    models = [read(ref) for ref in resolve_pair(old, new)]
    for model in models:
        require_intact(model)
    return compare_models(*models, tags=tags, signature=signature, deep=deep)


def resolve_pair(old: str | Path, new: str | Path | None) -> tuple[ModelRef, ModelRef]:
    """Two sides as typed; with one, that version (default: the newest) and the one before it."""
    if new is not None:
        return locate(old), locate(new)
    newer = locate(old)
    if newer.base is None or newer.version is None:
        raise VersionNotFound(
            f"{newer} is a single version folder, not a model base; diff needs two versions",
            hint="smsurgery diff OLD NEW",
        )
    versions = list_versions(newer.base)
    earlier = [v for v in versions if v < newer.version]
    if not earlier:
        what = "only one version" if len(versions) < 2 else f"no version before {newer.version}"
        raise VersionNotFound(
            f"{newer.base_location} has {what}; diff BASE needs two versions",
            hint=f"versions: {listing(str(v) for v in versions)}",
        )
    return locate(newer.base_location, max(earlier)), newer


def compare_models(
    old: SavedModelFile,
    new: SavedModelFile,
    *,
    tags: tuple[str, ...] | None = None,
    signature: str | None = None,
    deep: bool = False,
) -> DiffReport:
    """Every change from `old` to `new` in one meta graph (and the tag sets around it)."""
    chosen = choose_tags(old, new, tags)
    old_meta, new_meta = old.meta_graph(chosen), new.meta_graph(chosen)
    changes: list[Change] = []
    if signature is None:  # --signature narrows to that signature's own changes
        changes += compare_tag_sets(old.tag_sets, new.tag_sets)
    changes += compare_meta_graphs(old_meta, new_meta, signature=signature)
    if deep:
        changes += compare_variables(old, new)
        changes += compare_files(old, new)
    return DiffReport(
        old=_side(old, old_meta),
        new=_side(new, new_meta),
        tags=tuple(old_meta.tags),
        signature=signature,
        deep=deep,
        changes=changes,
    )


def _side(model: SavedModelFile, meta: MetaGraph) -> dict[str, Any]:
    ref = model.ref
    return {
        "path": ref.location,
        "base": str(ref.base_location) if ref.base_location is not None else None,
        "version": ref.version,
        "kind": meta.kind,
        "tag_sets": [list(t) for t in model.tag_sets],
    }


def choose_tags(old: SavedModelFile, new: SavedModelFile, tags: tuple[str, ...] | None) -> tuple[str, ...]:
    """The tag set both sides are read with: `tags`, else `serve`, else the only one they share."""
    old_sets = {frozenset(t): t for t in old.tag_sets}
    new_sets = {frozenset(t): t for t in new.tag_sets}
    common = [t for key, t in old_sets.items() if key in new_sets]
    if not common:
        raise TagSetNotFound(
            f"{old.ref} and {new.ref} have no tag set in common",
            hint=f"old: {_tag_sets_text(old.tag_sets)}; new: {_tag_sets_text(new.tag_sets)}",
        )
    if tags is not None:
        old.meta_graph(tags)  # each raises TagSetNotFound naming its side and its tag sets
        new.meta_graph(tags)
        return tuple(tags)
    if frozenset(DEFAULT_TAGS) in new_sets and frozenset(DEFAULT_TAGS) in old_sets:
        return DEFAULT_TAGS
    if len(common) == 1:
        return common[0]
    raise TagSetNotFound(
        f"{old.ref} and {new.ref} share several tag sets and none is [serve]; choose one with --tags",
        hint=f"shared: {_tag_sets_text(common)}",
    )


def _tag_sets_text(tag_sets: Iterable[tuple[str, ...]]) -> str:
    return listing("[" + tag_set_text(t) + "]" for t in tag_sets)


# ---- tag sets, signatures, inputs and outputs ----


def compare_tag_sets(old: list[tuple[str, ...]], new: list[tuple[str, ...]]) -> list[Change]:
    """A removed tag set breaks the clients that load it; an added one breaks nobody."""
    before = {frozenset(t): sorted(t) for t in old}
    after = {frozenset(t): sorted(t) for t in new}
    changes: list[Change] = []
    for key in sorted(before.keys() | after.keys(), key=sorted):
        changes += presence("tag_set", before.get(key), after.get(key), (BREAKING, COMPATIBLE, BREAKING), field="tags")
    return changes


def compare_meta_graphs(old: MetaGraph, new: MetaGraph, *, signature: str | None = None) -> list[Change]:
    """Default signature, init op, then every signature in key order."""
    old_sigs = {s.key: s for s in old.signatures()}
    new_sigs = {s.key: s for s in new.signatures()}
    changes: list[Change] = []
    if signature is not None:
        if signature not in old_sigs and signature not in new_sigs:
            raise SignatureNotFound(
                f"no signature '{signature}' in either side, meta graph [{tag_set_text(old.tags)}]",
                hint=f"old has: {listing(old_sigs)}; new has: {listing(new_sigs)}",
            )
        old_sigs = {k: v for k, v in old_sigs.items() if k == signature}
        new_sigs = {k: v for k, v in new_sigs.items() if k == signature}
    else:
        changes += _compare_default_signature(old, new)
        changes += _compare_init_op(old, new)
    changes += compare_members(
        "signature",
        old_sigs,
        new_sigs,
        key_field="signature",
        verdicts=(BREAKING, COMPATIBLE),
        interface=_signature_interface,
        to_json=SignatureView.to_json,
        both=lambda _key, before, after: compare_signatures(before, after),
    )
    return changes


def _compare_default_signature(old: MetaGraph, new: MetaGraph) -> list[Change]:
    """Clients that name no signature get `serving_default`: losing it breaks them."""
    verdicts = (BREAKING, COMPATIBLE, BREAKING)
    return presence(
        "default_signature", old.default_signature, new.default_signature, verdicts, field="default_signature"
    )


def _compare_init_op(old: MetaGraph, new: MetaGraph) -> list[Change]:
    """`__saved_model_init_op` is not a signature clients call; a change is internal."""
    before, after = _init_op_location(old), _init_op_location(new)
    return presence("init_op", before, after, (INTERNAL,) * 3, name=INIT_OP_SIGNATURE, field="name")


def _init_op_location(meta: MetaGraph) -> str | None:
    signature_def = meta.skim.signature_def
    if INIT_OP_SIGNATURE not in signature_def:
        return None
    outputs = signature_def[INIT_OP_SIGNATURE].outputs
    return ", ".join(outputs[alias].name for alias in sorted(outputs))


def compare_signatures(old: SignatureView, new: SignatureView) -> list[Change]:
    """Method name, inputs, outputs of one signature present on both sides."""
    changes = presence(
        "method", old.method_name, new.method_name, (BREAKING,) * 3, signature=old.key, field="method_name"
    )
    changes += _compare_tensors("input", old.key, old.inputs, new.inputs)
    changes += _compare_tensors("output", old.key, old.outputs, new.outputs)
    return changes


def _compare_tensors(
    direction: str, key: str, old: tuple[TensorView, ...], new: tuple[TensorView, ...]
) -> list[Change]:
    """A new input must be sent by every client (breaking); a new output is compatible."""
    return compare_members(
        direction,
        {t.alias: t for t in old},
        {t.alias: t for t in new},
        key_field="alias",
        verdicts=(BREAKING, BREAKING if direction == "input" else COMPATIBLE),
        interface=_tensor_interface,
        to_json=TensorView.to_json,
        both=lambda _alias, before, after: compare_tensors(direction, key, before, after),
        context={"signature": key},
    )


def compare_tensors(direction: str, key: str, old: TensorView, new: TensorView) -> list[Change]:
    """Encoding, dtype and shape are what clients see; the tensor name is internal."""
    kind = f"{direction}_changed"
    changes: list[Change] = []

    def add(verdict: str, name: str, before: Any, after: Any, note: str | None = None) -> None:
        changes.append(
            Change(kind, verdict, signature=key, alias=old.alias, field=name, old=before, new=after, note=note)
        )

    if old.encoding != new.encoding:
        add(BREAKING, "encoding", old.encoding, new.encoding)
    if old.dtype != new.dtype:
        add(BREAKING, "dtype", old.dtype, new.dtype)
    shape = shape_change(old.shape, new.shape)
    if shape is not None:
        add(shape[0], "shape", _shape_json(old.shape), _shape_json(new.shape), shape[1])
    if old.encoding == new.encoding and old.location != new.location:
        add(INTERNAL, "name", old.location, new.location)
    return changes


def _shape_json(shape: tuple[int, ...] | None) -> list[int] | None:
    return list(shape) if shape is not None else None


def shape_change(old: tuple[int, ...] | None, new: tuple[int, ...] | None) -> tuple[str, str] | None:
    """(verdict, note) for a shape change, None if equal.

    Unknown rank -> known rank narrows (breaking); known -> unknown relaxes
    (compatible); two known ranks that differ break. Per dimension: unknown
    (-1) -> fixed narrows, fixed -> unknown relaxes, fixed a -> fixed b breaks.
    The worst dimension decides.
    """
    if old == new:
        return None
    if old is None:
        return BREAKING, f"rank narrowed from unknown to {len(new or ())}"
    if new is None:
        return COMPATIBLE, f"rank relaxed from {len(old)} to unknown"
    if len(old) != len(new):
        return BREAKING, f"rank {len(old)} -> {len(new)}"
    verdict = COMPATIBLE
    notes: list[str] = []
    for index, (before, after) in enumerate(zip(old, new, strict=True)):
        if before == after or (before < 0 and after < 0):
            continue
        if after < 0:
            notes.append(f"dim {index} relaxed {before} -> -1")
        elif before < 0:
            verdict = BREAKING
            notes.append(f"dim {index} narrowed -1 -> {after}")
        else:
            verdict = BREAKING
            notes.append(f"dim {index} {before} -> {after}")
    if not notes:  # only different spellings of unknown (e.g. -1 and -2)
        return None
    return verdict, "; ".join(notes)


def _tensor_interface(tensor: TensorView) -> tuple[str, str, tuple[int, ...] | None]:
    return (tensor.encoding, tensor.dtype, tensor.shape)


def _signature_interface(signature: SignatureView) -> Hashable:
    return (
        signature.method_name,
        tuple((t.alias, *_tensor_interface(t)) for t in signature.inputs),
        tuple((t.alias, *_tensor_interface(t)) for t in signature.outputs),
    )
