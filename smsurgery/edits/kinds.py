"""Signature edits as values: apply several in one go, read them from JSON.

`RenameSignature("serving_default", "predict")` is the edit
`signatures.rename_signature(meta, "serving_default", "predict")` as a
frozen dataclass, so that a list of edits can be validated, applied in
order to one copy of the model (`smsurgery.edits.draft.edit`) and published as
one new version. `edit_from_json` reads the `signature apply` file format:
`{"op": "rename_signature", "old": ..., "new": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from smsurgery.core.errors import InvalidEdit, listing
from smsurgery.core.json_fields import wrong_field
from smsurgery.core.registry import kind_registrar
from smsurgery.edits import tags as tag_sets
from smsurgery.edits.signatures import (
    EditReport,
    add_output,
    add_signature,
    remove_output,
    remove_signature,
    rename_alias,
    rename_signature,
    repoint,
    set_default,
)


@dataclass(frozen=True)
class Edit:
    """Base of the edit values; `op` is the name used in JSON edit lists."""

    op: ClassVar[str] = ""

    def apply(self, meta: Any) -> EditReport:  # pragma: no cover - overridden
        raise NotImplementedError

    def apply_to(self, saved: Any, meta: Any) -> EditReport:
        """Apply to `meta`, one of `saved.meta_graphs`; edits that need the other meta graphs override this."""
        return self.apply(meta)

    def check_published(
        self, source: Path, source_tags: tuple[str, ...], staging: Path, tags: tuple[str, ...], *, tf2: bool
    ) -> list[str]:
        """Problems of the staged new version beyond old-vs-new equality (runs with TensorFlow); none here."""
        return []

    def rewrite_files(self, source: Path, staging: Path, saved: Any) -> None:
        """Rewrite files of the staged new version after carry-over (`saved`: its protos); none here."""

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}


EDIT_TYPES: dict[str, type[Edit]] = {}  # op -> edit class, filled by @edit_kind
# @edit_kind(op): register an edit class under `op`, its name in JSON edit lists (`signature apply`,
# recipes). Adding an edit kind is this decorator on a frozen dataclass with an `apply(meta) -> EditReport`,
# the kinds of change it reports in `smsurgery.edits.changes.ChangeKind`, and its CLI command.
edit_kind = kind_registrar(EDIT_TYPES, "edit")


@edit_kind("add_signature")
@dataclass(frozen=True)
class AddSignature(Edit):
    key: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    method: str = "predict"

    def apply(self, meta: Any) -> EditReport:
        return add_signature(meta, self.key, self.inputs, self.outputs, self.method)


@edit_kind("rename_signature")
@dataclass(frozen=True)
class RenameSignature(Edit):
    old: str
    new: str

    def apply(self, meta: Any) -> EditReport:
        return rename_signature(meta, self.old, self.new)


@edit_kind("remove_signature")
@dataclass(frozen=True)
class RemoveSignature(Edit):
    key: str

    def apply(self, meta: Any) -> EditReport:
        return remove_signature(meta, self.key)


@edit_kind("set_default")
@dataclass(frozen=True)
class SetDefault(Edit):
    key: str
    previous: str | None = None
    drop_previous: bool = False
    keep: bool = False

    def apply(self, meta: Any) -> EditReport:
        return set_default(meta, self.key, previous=self.previous, drop_previous=self.drop_previous, keep=self.keep)


@edit_kind("rename_alias")
@dataclass(frozen=True)
class RenameAlias(Edit):
    signature: str
    old: str
    new: str
    side: str | None = None

    def apply(self, meta: Any) -> EditReport:
        return rename_alias(meta, self.signature, self.old, self.new, side=self.side)


@edit_kind("add_output")
@dataclass(frozen=True)
class AddOutput(Edit):
    signature: str
    alias: str
    tensor: str

    def apply(self, meta: Any) -> EditReport:
        return add_output(meta, self.signature, self.alias, self.tensor)


@edit_kind("remove_output")
@dataclass(frozen=True)
class RemoveOutput(Edit):
    signature: str
    alias: str

    def apply(self, meta: Any) -> EditReport:
        return remove_output(meta, self.signature, self.alias)


@edit_kind("repoint")
@dataclass(frozen=True)
class Repoint(Edit):
    signature: str
    alias: str
    tensor: str
    side: str | None = None

    def apply(self, meta: Any) -> EditReport:
        return repoint(meta, self.signature, self.alias, self.tensor, side=self.side)


def edit_from_json(data: Mapping[str, Any]) -> Edit:
    """`{"op": "rename_signature", "old": "a", "new": "b"}` -> RenameSignature("a", "b")."""
    if not isinstance(data, Mapping) or not isinstance(data.get("op"), str) or data["op"] not in EDIT_TYPES:
        op = data.get("op") if isinstance(data, Mapping) else data
        raise InvalidEdit(f"unknown edit {op!r}", hint=f"ops: {listing(sorted(EDIT_TYPES))}")
    cls = EDIT_TYPES[data["op"]]
    arguments = {k: v for k, v in data.items() if k != "op"}
    wrong = wrong_field(cls, arguments)
    if wrong is not None:
        raise InvalidEdit(f"edit {data['op']}: {wrong}")
    try:
        return cls(**arguments)
    except TypeError as error:
        raise InvalidEdit(f"edit {data['op']}: {error}") from error


# --------------------------------------------------------------------------- serving repairs


def _tag_tuple(tags: Any) -> tuple[str, ...]:
    """`"serve,gpu"` or `["serve", "gpu"]` (JSON edit lists) -> ("serve", "gpu")."""
    if isinstance(tags, str):
        return tuple(t.strip() for t in tags.split(","))
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise InvalidEdit(f"tags must be a list of strings or 'a,b', not {tags!r}")
    return tuple(tags)


@edit_kind("set_tags")
@dataclass(frozen=True)
class SetTags(Edit):
    """Retag the meta graph (`train` -> `serve`): Serving finds a meta graph by its exact tag set."""

    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", _tag_tuple(self.tags))

    def apply_to(self, saved: Any, meta: Any) -> EditReport:
        return tag_sets.set_tags(saved, meta, self.tags)


@edit_kind("add_tags")
@dataclass(frozen=True)
class AddTags(Edit):
    """Serve the meta graph under a second tag set too (a copy of it: a meta graph has one tag set)."""

    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", _tag_tuple(self.tags))

    def apply_to(self, saved: Any, meta: Any) -> EditReport:
        return tag_sets.add_tags(saved, meta, self.tags)


@edit_kind("strip_devices")
@dataclass(frozen=True)
class StripDevices(Edit):
    """Clear every device placement (graph, functions, object graph): the server's placer chooses."""

    def apply(self, meta: Any) -> EditReport:
        from smsurgery.edits import devices

        return devices.strip_devices(meta)


@edit_kind("set_devices")
@dataclass(frozen=True)
class SetDevices(Edit):
    """Place every node, or those whose device matches the glob `match`, on `device`."""

    device: str
    match: str | None = None

    def apply(self, meta: Any) -> EditReport:
        from smsurgery.edits import devices

        return devices.set_devices(meta, self.device, self.match)


@edit_kind("set_shape")
@dataclass(frozen=True)
class SetShape(Edit):
    """Declare an input with another shape (`[-1, 224, 224, 3]`), e.g. to let Serving batch a batch-1 export."""

    signature: str
    alias: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        from smsurgery.edits import shapes

        dims = shapes.parse_dims(self.dims) if isinstance(self.dims, str) else tuple(self.dims)
        if not all(isinstance(d, int) and d >= -1 for d in dims):
            raise InvalidEdit(f"dims must be sizes or -1, not {self.dims!r}")
        object.__setattr__(self, "dims", dims)

    def apply(self, meta: Any) -> EditReport:
        from smsurgery.edits import shapes

        return shapes.set_input_shape(meta, self.signature, self.alias, self.dims)

    def check_published(
        self, source: Path, source_tags: tuple[str, ...], staging: Path, tags: tuple[str, ...], *, tf2: bool
    ) -> list[str]:
        from smsurgery.graph.shapes import run_new_shape

        return run_new_shape(staging, tags, self.signature, self.alias, self.dims, tf2=tf2)


@edit_kind("cast_input")
@dataclass(frozen=True)
class CastInput(Edit):
    """The signature takes input `alias` as `dtype` (uint8 pixels, say) and casts it, times `scale`, for the model."""

    signature: str
    alias: str
    dtype: str
    scale: float | None = None

    def apply(self, meta: Any) -> EditReport:
        from smsurgery.edits import casts

        return casts.cast_input(meta, self.signature, self.alias, self.dtype, self.scale)

    def check_published(
        self, source: Path, source_tags: tuple[str, ...], staging: Path, tags: tuple[str, ...], *, tf2: bool
    ) -> list[str]:
        from smsurgery.graph.casts import compare_cast

        return compare_cast(source, source_tags, staging, tags, self, tf2=tf2)


@edit_kind("prune")
@dataclass(frozen=True)
class Prune(Edit):
    """Drop the nodes, functions, variables and checkpoint entries that nothing the loaders need reaches."""

    def apply(self, meta: Any) -> EditReport:
        from smsurgery.edits import prune

        return prune.prune(meta)

    def apply_to(self, saved: Any, meta: Any) -> EditReport:
        from smsurgery.edits import prune

        return prune.prune(meta, saved)

    def rewrite_files(self, source: Path, staging: Path, saved: Any) -> None:
        """Write the checkpoint again without the entries no saver restores now (TensorFlow's writer)."""
        from smsurgery.edits import prune

        keep = prune.restored_keys(saved)
        if keep is None or not (source / "variables" / "variables.index").is_file():
            return
        from smsurgery.core.checkpoint_index import read_index

        entries = read_index(source / "variables" / "variables.index")
        if all(entry.name in keep for entry in entries):
            return
        from smsurgery.graph.checkpoint_rewrite import rewrite_checkpoint

        sizes = {e.name: e.size for e in entries}
        rewrite_checkpoint(source / "variables", staging / "variables", keep, sizes, prune.new_values(saved))
