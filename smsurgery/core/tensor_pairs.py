"""`ALIAS=TENSOR` as users write it on command lines, parsed by one rule everywhere.

`signature add`, `convert` and the other commands that name a signature's
tensors used to parse these lists each in their own way (one split commas,
one did not; one let a bare tensor name be its own alias). Tensor names
never contain commas or `=`, so one rule serves all: items may repeat or be
comma-separated, and a bare tensor name is its own alias.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from smsurgery.core.errors import InvalidName, NameCollision
from smsurgery.core.graphmodel import parse_input


def default_alias(tensor: str) -> str:
    """`dense/BiasAdd:0` -> `dense_BiasAdd`; `split:1` -> `split_1`."""
    read = parse_input(tensor, in_function=False, lenient=True)
    alias = re.sub(r"\W", "_", read.node)
    return alias if read.index == 0 else f"{alias}_{read.index}"


def parse_tensor_pairs(items: Iterable[str] | None, what: str = "tensor") -> dict[str, str]:
    """`["x=input:0,y=out", "logits"]` -> {"x": "input:0", "y": "out", "logits": "logits"}, in order."""
    pairs: dict[str, str] = {}
    for item in items or ():
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            alias, sep, tensor = (s.strip() for s in part.partition("="))
            if not sep:
                alias, tensor = default_alias(part), part
            if not alias or not tensor:
                raise InvalidName(f"{what} '{part}' is not ALIAS=TENSOR", hint="e.g. --output logits=dense/BiasAdd:0")
            if alias in pairs:
                raise NameCollision(f"two {what}s share an alias: '{alias}' ({pairs[alias]} and {tensor})")
            pairs[alias] = tensor
    return pairs
