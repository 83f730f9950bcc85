"""The edit-kind registry: one decorator per edit class, one effect per change kind (pure, no TF)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from smsurgery.core.errors import InternalError, InvalidEdit
from smsurgery.edits.changes import ChangeKind, Effect, change_kind
from smsurgery.edits.kinds import EDIT_TYPES, Edit, RenameSignature, edit_from_json, edit_kind
from smsurgery.edits.signatures import Change


def test_every_signature_edit_is_registered_under_its_json_op() -> None:
    for op in ("add_signature", "rename_signature", "remove_signature", "set_default", "rename_alias",
               "add_output", "remove_output", "repoint"):  # fmt: skip
        assert EDIT_TYPES[op].op == op


def test_json_round_trip_goes_through_the_registry() -> None:
    edit = RenameSignature("serving_default", "predict")
    assert edit_from_json(edit.to_json()) == edit


def test_an_op_registered_twice_is_a_bug() -> None:
    with pytest.raises(InternalError, match="registered twice"):

        @edit_kind("rename_signature")
        @dataclass(frozen=True)
        class Again(Edit):
            pass


def test_unknown_op_lists_the_registered_ones() -> None:
    with pytest.raises(InvalidEdit) as caught:
        edit_from_json({"op": "rename_everything"})
    assert "rename_signature" in str(caught.value)


def test_change_kind_strings_become_registered_kinds_with_their_effect() -> None:
    change = Change("rename_signature", "a", old="a", new="b")
    assert change.kind is ChangeKind.RENAME_SIGNATURE
    assert change.kind.effect is Effect.MOVE_SIGNATURE
    assert change.to_json()["kind"] == "rename_signature"
    assert type(change.to_json()["kind"]) is str


def test_an_unregistered_change_kind_is_a_bug_not_a_silent_no_op() -> None:
    with pytest.raises(InternalError, match="unregistered change kind"):
        change_kind("teleport_signature")


def test_every_change_kind_declares_an_effect() -> None:
    assert all(isinstance(kind.effect, Effect) for kind in ChangeKind)
