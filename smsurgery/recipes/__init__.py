"""One reviewed change, planned and applied across many model bases.

`recipe = smsurgery.recipes.load("rename.toml")`, then `recipe.plan(bases)`
(writes nothing) and `recipe.apply(bases, jobs=2)` (one new version per
model that changes). The CLI's `plan` and `apply` render these reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from smsurgery.publishing.target import PublishTarget
from smsurgery.recipes import recipe_file
from smsurgery.recipes.apply import ApplyReport, ModelOutcome, apply
from smsurgery.recipes.plan import PlanReport, plan
from smsurgery.recipes.recipe_file import RecipeFile, Step, read_recipe

__all__ = ["ApplyReport", "ModelOutcome", "PlanReport", "Recipe", "Step", "load", "parse"]


@dataclass(frozen=True)
class Recipe(RecipeFile):
    """A validated recipe that can plan and apply itself."""

    def plan(self, bases: Sequence[str | Path]) -> PlanReport:
        return plan(self, bases)

    def apply(
        self,
        bases: Sequence[str | Path],
        *,
        jobs: int = 1,
        keep_going: bool = False,
        target: PublishTarget | None = None,
        on_done: Callable[[ModelOutcome], None] | None = None,
    ) -> ApplyReport:
        return apply(self, bases, jobs=jobs, keep_going=keep_going, target=target, on_done=on_done)


def load(path: str | Path) -> Recipe:
    """Read and validate a recipe file (TOML, or JSON by its first character)."""
    found = read_recipe(path)
    return Recipe(found.steps, found.require, found.source, found.tags)


def parse(text: str, *, source: str = "<recipe>") -> Recipe:
    """Validate a recipe given as text (TOML, or JSON by its first character)."""
    found = recipe_file.parse(text, source=source)
    return Recipe(found.steps, found.require, found.source, found.tags)
