"""The one comparison of model outputs: every verification in smsurgery goes through here.

Edit verification (`graph.verify`), image-input's check and convert's check
only supply pairs of arrays; the rule for "the same output" lives here once:

- element-wise `|actual - expected| <= atol + rtol * |expected|` (numpy's
  `allclose`, with `expected` as the reference), computed in float64 (or
  complex128) so integer outputs do not wrap;
- **NaN equals NaN at the same positions**; a NaN against a number differs;
  equal infinities are equal (their difference would be NaN otherwise);
- a shape mismatch always differs; outputs that are not numbers (strings,
  bools as objects) must be exactly equal;
- an infinite difference always differs (a reference of inf tolerates nothing);
- a dtype mismatch is reported as a figure; it fails only when the values do.

The defaults (rtol 1e-5, atol 1e-6) pass float32 rounding on outputs in the
hundreds (an absolute 1e-5 alone does not: a float32 of 300 has a spacing
of 3e-5) and still catch any real change of a model's computation. `EXACT`
is for edits that must not change a single bit. Pure numpy: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smsurgery.core.errors import InvalidEdit

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6


@dataclass(frozen=True)
class Tolerance:
    """How far an output may be from its reference: `atol + rtol * |reference|`, element-wise."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    def __post_init__(self) -> None:
        if not (self.rtol >= 0 and self.atol >= 0):  # also refuses NaN
            raise InvalidEdit(f"--rtol {self.rtol:g} --atol {self.atol:g}: tolerances must be numbers >= 0")

    def to_json(self) -> dict[str, float]:
        return {"rtol": self.rtol, "atol": self.atol}


EXACT = Tolerance(0.0, 0.0)


def tolerance(rtol: float | None = None, atol: float | None = None) -> Tolerance:
    """A Tolerance where None means the default."""
    return Tolerance(DEFAULT_RTOL if rtol is None else rtol, DEFAULT_ATOL if atol is None else atol)


@dataclass(frozen=True)
class ArrayComparison:
    """One output against its reference; true when it matches within the tolerance."""

    status: str  # identical | within | differs
    max_abs: float | None  # None when no element-wise difference exists (shape, non-numeric)
    max_rel: float | None
    expected_shape: tuple[int, ...]
    actual_shape: tuple[int, ...]
    expected_dtype: str
    actual_dtype: str

    def __bool__(self) -> bool:
        return self.status != "differs"

    @property
    def distance(self) -> float:
        """The max abs diff, or inf where there is none to give and the outputs differ."""
        if self.max_abs is not None:
            return self.max_abs
        return 0.0 if self else float("inf")

    @property
    def shape_mismatch(self) -> bool:
        return self.expected_shape != self.actual_shape

    @property
    def dtype_mismatch(self) -> bool:
        return self.expected_dtype != self.actual_dtype

    @property
    def detail(self) -> str:
        if self.shape_mismatch:
            return f"shape {self.expected_shape} -> {self.actual_shape}"
        text = "values differ" if self.max_abs is None else f"max abs diff {self.max_abs:.6g}"
        if self.max_rel is not None:
            text += f", max rel diff {self.max_rel:.6g}"
        if self.dtype_mismatch:
            text += f" (dtype {self.expected_dtype} -> {self.actual_dtype})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": bool(self),
            "max_abs_diff": self.max_abs,
            "max_rel_diff": self.max_rel,
            "shape_mismatch": self.shape_mismatch,
            "dtype_mismatch": self.dtype_mismatch,
        }


def _wide(array: np.ndarray) -> np.ndarray:
    return array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)


def compare_arrays(expected: Any, actual: Any, tol: Tolerance = Tolerance()) -> ArrayComparison:
    """`actual` against the reference `expected`, by the rules in the module docstring."""
    a, b = np.asarray(expected), np.asarray(actual)

    def result(status: str, max_abs: float | None, max_rel: float | None) -> ArrayComparison:
        return ArrayComparison(status, max_abs, max_rel, a.shape, b.shape, str(a.dtype), str(b.dtype))

    if a.shape != b.shape:
        return result("differs", None, None)
    if a.dtype.kind not in "biufc" or b.dtype.kind not in "biufc":
        return result("identical", 0.0, 0.0) if np.array_equal(a, b) else result("differs", None, None)
    if a.size == 0:
        return result("identical" if a.dtype == b.dtype else "within", 0.0, 0.0)
    wa, wb = _wide(a), _wide(b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        same = (wa == wb) | (np.isnan(wa) & np.isnan(wb))
        delta = np.where(same, 0.0, np.abs(wa - wb))
        delta = np.where(np.isnan(delta), np.inf, delta)
        rel = np.where(delta == 0, 0.0, delta / np.abs(wa))
    max_abs, max_rel = float(np.max(delta)), float(np.max(rel))
    if max_abs == 0.0:
        return result("identical" if a.dtype == b.dtype else "within", 0.0, 0.0)
    within = bool(np.all(np.isfinite(delta) & (delta <= tol.atol + tol.rtol * np.abs(wa))))
    return result("within" if within else "differs", max_abs, max_rel)


@dataclass(frozen=True)
class OutputsComparison:
    """Named outputs against named references; true when the names agree and every output matches."""

    tolerance: Tolerance
    outputs: dict[str, ArrayComparison]
    missing: tuple[str, ...] = ()  # in the reference, not in the actual outputs
    extra: tuple[str, ...] = ()  # in the actual outputs only

    def __bool__(self) -> bool:
        return not self.missing and not self.extra and all(self.outputs.values())

    @property
    def max_abs(self) -> float:
        """The largest absolute difference (inf when names, shapes or non-numeric values disagree)."""
        if self.missing or self.extra:
            return float("inf")
        return max((item.distance for item in self.outputs.values()), default=0.0)

    def failures(self) -> list[str]:
        lines = [f"output '{alias}' {item.detail}" for alias, item in sorted(self.outputs.items()) if not item]
        if self.missing:
            lines.append(f"missing outputs: {', '.join(self.missing)}")
        if self.extra:
            lines.append(f"unexpected outputs: {', '.join(self.extra)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": bool(self),
            **self.tolerance.to_json(),
            "max_abs_diff": self.max_abs,
            "outputs": {alias: item.to_json() for alias, item in sorted(self.outputs.items())},
            "missing": list(self.missing),
            "extra": list(self.extra),
        }


def compare_outputs(
    expected: Mapping[str, Any], actual: Mapping[str, Any], tol: Tolerance = Tolerance()
) -> OutputsComparison:
    """Every output of `actual` against the output of the same name in `expected`."""
    shared = sorted(set(expected) & set(actual))
    return OutputsComparison(
        tolerance=tol,
        outputs={alias: compare_arrays(expected[alias], actual[alias], tol) for alias in shared},
        missing=tuple(sorted(set(expected) - set(actual))),
        extra=tuple(sorted(set(actual) - set(expected))),
    )
