"""One registry shape for the kinds named in JSON edit lists and recipes (edits, attachments).

A kind is a class registered under its `op`, the name a JSON step uses; the
decorator sets `cls.op` so a step can be written back as JSON, and refuses an
op registered twice (two modules claiming one name would make a recipe's
meaning depend on import order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from smsurgery.core.errors import InternalError

Kind = TypeVar("Kind", bound=type)


def kind_registrar(types: dict[str, Any], what: str) -> Callable[[str], Callable[[Kind], Kind]]:
    """A decorator factory that registers classes in `types` under their op (`what`: "edit", "attachment")."""

    def kind(op: str) -> Callable[[Kind], Kind]:
        def register(cls: Kind) -> Kind:
            if op in types:
                raise InternalError(f"{what} op {op!r} is registered twice ({types[op].__name__}, {cls.__name__})")
            cls.op = op  # type: ignore[attr-defined]
            types[op] = cls
            return cls

        return register

    return kind
