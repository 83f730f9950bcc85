"""Where and how a new version is published: one value for every writing command.

Every command that writes takes the same choices (which base, which new
version number, link or copy the variable shards, verify or not, how close
is close enough, who shows progress). Passing them as one value keeps the
choices in one place and keeps the word "version" unambiguous: here it is
always the number of the version being *written*; the source version is
chosen only by `PATH@N`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from smsurgery.core.errors import InvalidOption
from smsurgery.core.layout import check_new_version
from smsurgery.publishing.atomic import ProgressCallback, refuse_base_inside_a_version


@dataclass(frozen=True)
class PublishTarget:
    """The new version: into `base` (None: the source's own base) as number `version` (None: the next free).

    `rtol`/`atol` of None mean the command's own default: proto-only edits
    compare exactly (old and new run the same computation), attachments that
    add computation compare within float rounding.
    """

    base: str | Path | None = None
    version: int | None = None
    link: bool = True
    verify: bool = True
    rtol: float | None = None
    atol: float | None = None
    progress: ProgressCallback | None = None

    def __post_init__(self) -> None:
        if self.version is not None:
            check_new_version(self.version)  # before any work: Serving cannot serve -1 or 2**63
        if self.base is not None and "://" not in str(self.base):
            refuse_base_inside_a_version(Path(self.base))  # --out m/1: refused before any work too
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InvalidOption(f"--{name} must be a finite number >= 0, not {value}")

    def tolerances(self, rtol: float, atol: float) -> tuple[float, float]:
        """(rtol, atol): the user's values where given, else the command's defaults."""
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)

    def with_progress(self, progress: ProgressCallback | None) -> PublishTarget:
        return replace(self, progress=progress)


DEFAULT_TARGET = PublishTarget()  # the source's own base, the next free number, linked, verified
