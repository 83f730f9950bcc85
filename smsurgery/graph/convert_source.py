"""What a convert source offers, whatever its format: candidate tensors, a plan, an export, a run.

The graph route (checkpoints, frozen GraphDefs) and the Keras route both
implement `Source`; `convert` drives either without knowing which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from smsurgery.core.errors import (
    InvalidEdit,
)
from smsurgery.core.formats import SourceFormat
from smsurgery.core.model import SignatureView

CANDIDATES_SCHEMA = "smsurgery.convert.candidates/1"


@dataclass(frozen=True)
class Candidate:
    """A tensor that could be a signature input (a placeholder) or output (nothing consumes it)."""

    name: str
    op: str
    dtype: str
    shape: tuple[int, ...] | None

    def to_json(self) -> dict[str, Any]:
        shape = list(self.shape) if self.shape is not None else None
        return {"name": self.name, "op": self.op, "dtype": self.dtype, "shape": shape}


@dataclass(frozen=True)
class Candidates:
    source: Path
    format: SourceFormat
    inputs: tuple[Candidate, ...]
    outputs: tuple[Candidate, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CANDIDATES_SCHEMA,
            "source": str(self.source),
            "format": self.format.kind,
            "description": self.format.description,
            "inputs": [c.to_json() for c in self.inputs],
            "outputs": [c.to_json() for c in self.outputs],
        }


class TensorsNeeded(InvalidEdit):
    """`--inputs`/`--outputs` were not given for a graph source; carries the candidates to show."""

    def __init__(self, message: str, candidates: Candidates, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = candidates


class Source(Protocol):
    """What each route offers: a model in memory that can name, plan, export and run one signature."""

    def candidates(self) -> Candidates: ...

    def plan(
        self,
        in_pairs: list[tuple[str, str]],
        out_pairs: list[tuple[str, str]],
        key: str,
        method: str,
        tags: tuple[str, ...],
    ) -> None: ...

    def export(self, path: Path, tags: tuple[str, ...]) -> None: ...

    def run(self, view: SignatureView, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...
