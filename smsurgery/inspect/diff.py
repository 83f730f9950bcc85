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

import hashlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from smsurgery.core.checkpoint_index import IndexEntry
from smsurgery.core.errors import CorruptModel, SignatureNotFound, TagSetNotFound, VersionNotFound, listing
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef, list_versions, resolve
from smsurgery.core.model import (
    DEFAULT_TAGS,
    INIT_OP_SIGNATURE,
    MetaGraph,
    SavedModelFile,
    SignatureView,
    TensorView,
    read,
    tag_set_text,
)

DIFF_SCHEMA = "smsurgery.diff/1"
BREAKING = "breaking"
COMPATIBLE = "compatible"
INTERNAL = "internal"
VERDICTS = (BREAKING, COMPATIBLE, INTERNAL)
UNCHANGED = "unchanged"
EXIT_UNCHANGED = 0
EXIT_COMPATIBLE = 1  # only compatible or internal changes
EXIT_BREAKING = 3  # 2 is left to errors (SmsurgeryError)
RENAMED_NOTE = "renamed (likely)"
FILE_FOLDERS = ("assets", "assets.extra")

T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One difference between the old and the new version.

    `kind` is `<subject>_<removed|added|changed>` (subjects: tag_set,
    default_signature, init_op, signature, method, input, output, variable,
    file). `alias` names an input or output; `name` a variable, a file or
    the init op; `field` the attribute that changed.
    """

    kind: str
    verdict: str
    signature: str | None = None
    alias: str | None = None
    name: str | None = None
    field: str | None = None
    old: Any = None
    new: Any = None
    note: str | None = None
    counterpart: str | None = None  # the other half of a likely rename

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def summary(changes: Iterable[Change]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for change in changes:
        counts[change.verdict] += 1
    return counts


def overall_verdict(changes: Iterable[Change]) -> str:
    """The worst verdict: breaking > compatible > internal; `unchanged` if none."""
    counts = summary(changes)
    return next((v for v in VERDICTS if counts[v]), UNCHANGED)


def exit_status(changes: Iterable[Change]) -> int:
    """0 no changes, 1 only compatible or internal ones, 3 anything breaking."""
    verdict = overall_verdict(changes)
    if verdict == UNCHANGED:
        return EXIT_UNCHANGED
    return EXIT_BREAKING if verdict == BREAKING else EXIT_COMPATIBLE


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
        return resolve(old), resolve(new)
    newer = resolve(old)
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
            f"{newer.base} has {what}; diff BASE needs two versions",
            hint=f"versions: {listing(str(v) for v in versions)}",
        )
    return resolve(newer.base, max(earlier)), newer


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
        "path": str(ref.version_dir),
        "base": str(ref.base) if ref.base is not None else None,
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


def compare_members(
    kind: str,
    old: dict[str, T],
    new: dict[str, T],
    *,
    key_field: str,
    verdicts: tuple[str, str],
    interface: Callable[[T], Hashable],
    to_json: Callable[[T], Any],
    both: Callable[[str, T, T], list[Change]],
    context: dict[str, Any] | None = None,
) -> list[Change]:
    """Removed, added and common members of two keyed collections, in key order.

    `verdicts` are those of a removal and an addition; the added half of a
    likely rename takes the worse of the two (a renamed output still breaks).
    """
    removed = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    renamed = likely_renames(removed, added, interface)
    partner = {**renamed, **{b: a for a, b in renamed.items()}}
    changes: list[Change] = []
    for key in sorted(old.keys() | new.keys()):
        where: dict[str, Any] = {key_field: key, **(context or {})}
        if key in partner:
            where.update(note=RENAMED_NOTE, counterpart=partner[key])
        if key in removed:
            changes.append(Change(f"{kind}_removed", verdicts[0], old=to_json(removed[key]), **where))
        elif key in added:
            verdict = worst(verdicts) if key in partner else verdicts[1]
            changes.append(Change(f"{kind}_added", verdict, new=to_json(added[key]), **where))
        else:
            changes += both(key, old[key], new[key])
    return changes


def presence(subject: str, before: Any, after: Any, verdicts: tuple[str, str, str], **where: Any) -> list[Change]:
    """One value on either side (None: absent); `verdicts` for removed, added, changed."""
    if before == after:
        return []
    index = 1 if before is None else 0 if after is None else 2
    action, verdict = ("removed", "added", "changed")[index], verdicts[index]
    return [Change(f"{subject}_{action}", verdict, old=before, new=after, **where)]


def worst(verdicts: Iterable[str]) -> str:
    given = set(verdicts)
    return next(v for v in VERDICTS if v in given)


def likely_renames(removed: dict[str, T], added: dict[str, T], interface: Callable[[T], Hashable]) -> dict[str, str]:
    """Removed name -> added name, where each is the other's only match in what clients see."""
    by_old: dict[Hashable, list[str]] = {}
    by_new: dict[Hashable, list[str]] = {}
    for name, item in removed.items():
        by_old.setdefault(interface(item), []).append(name)
    for name, item in added.items():
        by_new.setdefault(interface(item), []).append(name)
    return {
        names[0]: by_new[key][0] for key, names in by_old.items() if len(names) == 1 and len(by_new.get(key, [])) == 1
    }


# ---- --deep: variables from the checkpoint index, files by checksum ----


def compare_variables(old: SavedModelFile, new: SavedModelFile) -> list[Change]:
    """Names, dtypes, shapes, sizes and value checksums (crc32c) of every variable; all internal."""
    return compare_members(
        "variable",
        _variables(old),
        _variables(new),
        key_field="name",
        verdicts=(INTERNAL, INTERNAL),
        interface=lambda e: (e.dtype, e.shape, e.size, e.crc32c),
        to_json=_variable_json,
        both=_variable_changes,
    )


def _variable_changes(name: str, old: IndexEntry, new: IndexEntry) -> list[Change]:
    fields: list[tuple[str, Any, Any]] = []
    if old.dtype != new.dtype:
        fields.append(("dtype", old.dtype, new.dtype))
    if old.shape != new.shape:
        fields.append(("shape", list(old.shape), list(new.shape)))
    if not fields and old.size != new.size:  # same dtype and shape: strings of other lengths
        fields.append(("size", old.size, new.size))
    if not fields and old.crc32c != new.crc32c:
        fields.append(("values", f"crc32c:{old.crc32c:08x}", f"crc32c:{new.crc32c:08x}"))
    return [Change("variable_changed", INTERNAL, name=name, field=f, old=a, new=b) for f, a, b in fields]


def _variables(model: SavedModelFile) -> dict[str, IndexEntry]:
    return {e.name: e for e in model.variable_entries()}


def _variable_json(entry: IndexEntry) -> dict[str, Any]:
    return {"dtype": entry.dtype, "shape": list(entry.shape), "bytes": entry.size}


def compare_files(old: SavedModelFile, new: SavedModelFile) -> list[Change]:
    """Files under assets/ and assets.extra/, by sha256; all internal."""
    old_files, new_files = _file_digests(old), _file_digests(new)
    changes: list[Change] = []
    for path in sorted(old_files.keys() | new_files.keys()):
        changes += presence(
            "file", old_files.get(path), new_files.get(path), (INTERNAL,) * 3, name=path, field="sha256"
        )
    return changes


def _file_digests(model: SavedModelFile) -> dict[str, str]:
    return {
        entry.path: _sha256(model.path / entry.path) for folder in FILE_FOLDERS for entry in model.files_under(folder)
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as error:
        raise CorruptModel(f"cannot read {path}: {error.strerror}") from error
    return digest.hexdigest()
