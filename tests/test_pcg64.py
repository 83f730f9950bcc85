"""The pure-Python sample generator gives numpy's values, so a request body is the same with or without numpy."""

from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsurgery.core.model import TensorView
from smsurgery.serving import samples
from smsurgery.serving.pcg64 import Generator
from smsurgery.serving.samples import round_like_numpy, sample_array, sample_json_values, tiny_png
from tests.conftest import FIXTURE_MODELS, REPO

SEEDS = st.one_of(st.integers(0, 2**16), st.integers(0, 2**300))
DTYPES = ("DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_INT8", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT64", "DT_BOOL")


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


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(0.0, 1.0) | st.floats(allow_nan=False, allow_infinity=False, width=32), decimals=st.integers(0, 6)
)
def test_rounding_is_numpys(value: float, decimals: int) -> None:
    assert round_like_numpy(value, decimals) == float(np.round(np.float64(value), decimals))


SHAPES = st.one_of(st.none(), st.lists(st.sampled_from((-1, 0, 1, 2, 3, 5)), max_size=4).map(tuple))


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from(DTYPES), shape=SHAPES, batch=st.integers(1, 4), seed=st.integers(0, 50))
def test_json_samples_are_the_numpy_samples_rounded(
    dtype: str, shape: tuple[int, ...] | None, batch: int, seed: int
) -> None:
    tensor = TensorView("in-put", dtype, shape, "x:0", "name", ())
    got_shape, values = sample_json_values(tensor, batch=batch, seed=seed)
    array = sample_array(tensor, batch=batch, seed=seed)
    if array.dtype.kind == "f":
        array = np.round(array.astype(np.float64), 4)
    assert got_shape == array.shape
    assert values == array.ravel().tolist()
    assert [type(v) for v in values] == [type(v) for v in array.ravel().tolist()]


@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_HALF", "DT_INT32", "DT_BOOL"])
def test_samples_past_the_pure_limit_come_from_numpy_with_the_same_values(
    dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tensor = TensorView("image", dtype, (-1, 8, 8, 3), "x:0", "name", ())
    pure = sample_json_values(tensor, batch=3, seed=1)
    monkeypatch.setattr(samples, "PURE_SAMPLE_LIMIT", 10)
    assert sample_json_values(tensor, batch=3, seed=1) == pure


def test_tiny_png_is_the_png_numpys_pixels_made() -> None:
    """Byte for byte the PNG that smsurgery made from numpy's pixels before the port."""
    for seed in range(5):
        pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(8))
        assert zlib.compress(raw) in tiny_png(seed=seed)


def test_a_request_body_is_built_without_numpy() -> None:
    """The point of the port: `request` on a plain model never imports numpy."""
    code = (
        "import sys; from smsurgery.serving.request_body import build_request; "
        f"build_request({str(FIXTURE_MODELS / 'tf1_linear')!r}, batch=3, fmt='columnar').text(); "
        f"build_request({str(FIXTURE_MODELS / 'tf1_image')!r}).text(); "
        "print('numpy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "False"
