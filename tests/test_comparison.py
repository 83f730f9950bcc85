"""The one comparison: NaN rule, tolerances, shape/dtype figures (pure numpy, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from smsurgery.core.errors import InvalidEdit
from smsurgery.publishing.comparison import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    EXACT,
    Tolerance,
    compare_arrays,
    compare_outputs,
    tolerance,
)


def test_identical_arrays_are_identical_with_zero_figures() -> None:
    result = compare_arrays(np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(2, 3))
    assert result and result.status == "identical"
    assert (result.max_abs, result.max_rel) == (0.0, 0.0)


def test_nan_equals_nan_at_the_same_positions_only() -> None:
    nan = float("nan")
    assert compare_arrays([1.0, nan], [1.0, nan], EXACT).status == "identical"
    moved = compare_arrays([1.0, nan], [nan, 1.0])
    assert not moved and moved.max_abs == float("inf")
    assert not compare_arrays([nan], [0.0])


def test_equal_infinities_are_equal_and_opposite_ones_differ() -> None:
    inf = float("inf")
    assert compare_arrays([inf, -inf], [inf, -inf], EXACT)
    assert not compare_arrays([inf], [-inf])


def test_float32_rounding_on_large_outputs_passes_the_defaults() -> None:
    """The case that pushed users to --no-verify: 5e-5 of rounding on outputs of ~50."""
    expected = np.float32([56.123, -48.5, 300.0])
    actual = expected + np.float32([5e-5, -3e-5, 6e-5 * 5])
    result = compare_arrays(expected, actual)
    assert result and result.status == "within"
    assert result.max_abs == pytest.approx(3e-4, rel=0.2)
    assert not compare_arrays(expected, actual, Tolerance(rtol=0.0, atol=1e-5))


def test_the_tolerance_is_atol_plus_rtol_times_the_reference() -> None:
    tol = Tolerance(rtol=0.1, atol=0.5)
    assert compare_arrays([10.0], [11.5], tol)  # 1.5 <= 0.5 + 0.1 * 10
    assert not compare_arrays([10.0], [11.6], tol)
    assert not compare_arrays([11.5], [10.0], Tolerance(rtol=0.0, atol=1.0))  # reference is the first
    assert compare_arrays([0.0], [2e-5], Tolerance(rtol=0.0, atol=2e-5))


def test_relative_difference_is_against_the_reference() -> None:
    result = compare_arrays([2.0, 0.0], [2.5, 0.0], Tolerance(rtol=1.0, atol=0.0))
    assert result.max_abs == 0.5 and result.max_rel == 0.25
    assert compare_arrays([0.0], [1.0], Tolerance(1.0, 0.0)).max_rel == float("inf")


def test_shape_mismatch_differs_and_says_so() -> None:
    result = compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not result and result.shape_mismatch and result.max_abs is None
    assert "shape (2, 3) -> (3, 2)" in result.detail


def test_dtype_mismatch_is_a_figure_not_a_failure() -> None:
    result = compare_arrays(np.float32([1, 2]), np.float64([1, 2]))
    assert result and result.status == "within" and result.dtype_mismatch
    assert result.to_json()["dtype_mismatch"] is True


def test_integers_do_not_wrap() -> None:
    result = compare_arrays(np.uint8([0]), np.uint8([255]), EXACT)
    assert not result and result.max_abs == 255.0


def test_strings_must_be_equal() -> None:
    assert compare_arrays(np.array([b"a", b"b"], object), np.array([b"a", b"b"], object), EXACT)
    assert not compare_arrays(np.array([b"a"], object), np.array([b"c"], object))


def test_outputs_comparison_names_and_worst_figure() -> None:
    result = compare_outputs({"a": [1.0], "b": [2.0]}, {"a": [1.0], "b": [2.5]})
    assert not result and result.max_abs == 0.5
    assert result.failures() == ["output 'b' max abs diff 0.5, max rel diff 0.25"]
    renamed = compare_outputs({"a": [1.0]}, {"c": [1.0]})
    assert not renamed and renamed.missing == ("a",) and renamed.extra == ("c",)
    assert renamed.max_abs == float("inf")
    assert compare_outputs({"a": [1.0]}, {"a": [1.0]}).to_json()["ok"] is True


def test_defaults_live_in_one_place() -> None:
    assert tolerance() == Tolerance() == Tolerance(DEFAULT_RTOL, DEFAULT_ATOL)
    assert tolerance(atol=0.0) == Tolerance(DEFAULT_RTOL, 0.0)
    with pytest.raises(InvalidEdit, match="--rtol -1"):
        Tolerance(rtol=-1.0)
    with pytest.raises(InvalidEdit):
        Tolerance(atol=float("nan"))
