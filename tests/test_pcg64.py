"""The pure-Python sample generator gives numpy's values, so a request body is the same with or without numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from smsurgery.serving.pcg64 import Generator

SEEDS = st.one_of(st.integers(0, 2**16), st.integers(0, 2**300))


@settings(max_examples=200, deadline=None)
@given(seed=SEEDS, draws=st.lists(st.tuples(st.sampled_from(("uniform", 2, 5, 7, 256, 2**31)), st.integers(0, 40))))
def test_draws_are_numpys_value_for_value(seed: int, draws: list[tuple[object, int]]) -> None:
    """Any sequence of draws from one generator, including 32-bit draws that share a 64-bit one."""
    ours, theirs = Generator(seed), np.random.default_rng(seed)
    for kind, count in draws:
        if kind == "uniform":
            assert ours.uniform(count) == theirs.uniform(0.0, 1.0, size=count).tolist()
        elif kind == 256:
            assert ours.bytes_uint8(count) == theirs.integers(0, 256, size=count, dtype=np.uint8).tobytes()
        else:
            assert isinstance(kind, int)
            assert ours.integers(kind, count) == theirs.integers(0, kind, size=count).tolist()
