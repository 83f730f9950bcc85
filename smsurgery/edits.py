"""Signature edits as values: apply several in one go, read them from JSON.

`RenameSignature("serving_default", "predict")` is the edit
`signatures.rename_signature(meta, "serving_default", "predict")` as a
frozen dataclass, so that a list of edits can be validated, applied in
order to one copy of the model (`smsurgery.editing.edit`) and published as
one new version. `edit_from_json` reads the `signature apply` file format:
`{"op": "rename_signature", "old": ..., "new": ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from smsurgery.errors import InvalidEdit, listing
from smsurgery.json_fields import wrong_field
from smsurgery.signatures import (
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

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, **asdict(self)}


@dataclass(frozen=True)
class AddSignature(Edit):
    key: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    method: str = "predict"
    op: ClassVar[str] = "add_signature"

    def apply(self, meta: Any) -> EditReport:
        return add_signature(meta, self.key, self.inputs, self.outputs, self.method)


@dataclass(frozen=True)
class RenameSignature(Edit):
    old: str
    new: str
    op: ClassVar[str] = "rename_signature"

    def apply(self, meta: Any) -> EditReport:
        return rename_signature(meta, self.old, self.new)


@dataclass(frozen=True)
class RemoveSignature(Edit):
    key: str
    op: ClassVar[str] = "remove_signature"

    def apply(self, meta: Any) -> EditReport:
        return remove_signature(meta, self.key)


@dataclass(frozen=True)
class SetDefault(Edit):
    key: str
    previous: str | None = None
    drop_previous: bool = False
    keep: bool = False
    op: ClassVar[str] = "set_default"

    def apply(self, meta: Any) -> EditReport:
        return set_default(meta, self.key, previous=self.previous, drop_previous=self.drop_previous, keep=self.keep)


@dataclass(frozen=True)
class RenameAlias(Edit):
    signature: str
    old: str
    new: str
    side: str | None = None
    op: ClassVar[str] = "rename_alias"

    def apply(self, meta: Any) -> EditReport:
        return rename_alias(meta, self.signature, self.old, self.new, side=self.side)


@dataclass(frozen=True)
class AddOutput(Edit):
    signature: str
    alias: str
    tensor: str
    op: ClassVar[str] = "add_output"

    def apply(self, meta: Any) -> EditReport:
        return add_output(meta, self.signature, self.alias, self.tensor)


@dataclass(frozen=True)
class RemoveOutput(Edit):
    signature: str
    alias: str
    op: ClassVar[str] = "remove_output"

    def apply(self, meta: Any) -> EditReport:
        return remove_output(meta, self.signature, self.alias)


@dataclass(frozen=True)
class Repoint(Edit):
    signature: str
    alias: str
    tensor: str
    side: str | None = None
    op: ClassVar[str] = "repoint"

    def apply(self, meta: Any) -> EditReport:
        return repoint(meta, self.signature, self.alias, self.tensor, side=self.side)


EDIT_TYPES: dict[str, type[Edit]] = {
    cls.op: cls
    for cls in (AddSignature, RenameSignature, RemoveSignature, SetDefault, RenameAlias, AddOutput, RemoveOutput,
                Repoint)
}  # fmt: skip


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
