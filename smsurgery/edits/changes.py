"""What an edit reports (`Change`, `EditReport`), the kinds of change, and what each does to lineage.

Verification compares every signature and alias of a new version with the
one of the source it came from. Which one that is follows from the changes
an edit made: a renamed signature still stands for its old key, a repointed
output stands for nothing (its values may differ), a stripped device
changes no name at all. Each `ChangeKind` carries that `Effect`, so an edit
kind that reports a new change kind declares its effect here, in one place,
and `editing.Lineage` needs no branch for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any

from smsurgery.core.errors import InternalError


class Effect(Enum):
    """What a change does to the map from new signatures and aliases to the source's."""

    NONE = "none"  # names and values unchanged (devices, tags added, object graph dropped)
    MOVE_SIGNATURE = "move_signature"  # the signature is now under `new`
    COPY_SIGNATURE = "copy_signature"  # also under `new`
    DROP_SIGNATURE = "drop_signature"
    NEW_SIGNATURE = "new_signature"  # nothing in the source to compare with
    RENAME_ALIAS = "rename_alias"
    NEW_ALIAS = "new_alias"  # an alias whose values may differ from the source's
    DROP_ALIAS = "drop_alias"
    RETAG = "retag"  # the meta graph is now found under the tag set `new`
    ADD_TAG_SET = "add_tag_set"  # a copy of the meta graph under the tag set `new`
    RETYPE_INPUT = "retype_input"  # the source cannot be fed the same inputs: the edit proves itself


class ChangeKind(StrEnum):
    """Every kind of change an edit can report; the value is the `kind` string of the JSON report."""

    effect: Effect

    def __new__(cls, value: str, effect: Effect = Effect.NONE) -> ChangeKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.effect = effect
        return member

    RENAME_SIGNATURE = "rename_signature", Effect.MOVE_SIGNATURE
    COPY_SIGNATURE = "copy_signature", Effect.COPY_SIGNATURE
    REMOVE_SIGNATURE = "remove_signature", Effect.DROP_SIGNATURE
    ADD_SIGNATURE = "add_signature", Effect.NEW_SIGNATURE
    RENAME_ALIAS = "rename_alias", Effect.RENAME_ALIAS
    ADD_OUTPUT = "add_output", Effect.NEW_ALIAS
    REPOINT = "repoint", Effect.NEW_ALIAS
    REMOVE_OUTPUT = "remove_output", Effect.DROP_ALIAS
    DROP_OBJECT_GRAPH = "drop_object_graph", Effect.NONE
    SET_TAGS = "set_tags", Effect.RETAG
    ADD_TAGS = "add_tags", Effect.ADD_TAG_SET
    STRIP_DEVICES = "strip_devices", Effect.NONE
    SET_DEVICES = "set_devices", Effect.NONE
    SET_SHAPE = "set_shape", Effect.NONE  # same values for the inputs the source accepted
    CAST_INPUT = "cast_input", Effect.RETYPE_INPUT
    PRUNE = "prune", Effect.NONE


def change_kind(kind: str) -> ChangeKind:
    """The registered kind for a `kind` string; an unregistered one is a bug of the edit that made it."""
    try:
        return ChangeKind(kind)
    except ValueError:
        raise InternalError(
            f"unregistered change kind {kind!r}: add it to smsurgery.edits.changes.ChangeKind"
        ) from None


@dataclass(frozen=True)
class Change:
    """One thing an edit changed; `signature` is the key before the change."""

    kind: ChangeKind  # a plain string is accepted and must name a registered kind
    signature: str
    alias: str | None = None
    side: str | None = None  # inputs | outputs
    old: str | None = None
    new: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", change_kind(self.kind))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


@dataclass
class EditReport:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: EditReport) -> EditReport:
        self.changes.extend(other.changes)
        self.warnings.extend(other.warnings)
        return self
