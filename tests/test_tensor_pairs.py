"""One ALIAS=TENSOR rule for every command that names a signature's tensors."""

from __future__ import annotations

import pytest

from smsurgery.core.errors import InvalidName, NameCollision
from smsurgery.core.tensor_pairs import parse_tensor_pairs


def test_tensor_pairs_one_rule() -> None:
    assert parse_tensor_pairs(["x=input:0,y=out", "dense/BiasAdd:1"]) == {
        "x": "input:0", "y": "out", "dense_BiasAdd_1": "dense/BiasAdd:1"
    }  # fmt: skip
    for bad, error in (("=x:0", InvalidName), ("y=", InvalidName), ("a=x,a=y", NameCollision)):
        with pytest.raises(error):
            parse_tensor_pairs([bad])
