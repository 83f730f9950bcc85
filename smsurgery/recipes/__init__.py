"""One reviewed change, planned and applied across many model bases.

`recipe = smsurgery.recipes.load("rename.toml")`, then `recipe.plan(bases)`
(writes nothing) and `recipe.apply(bases, jobs=2)` (one new version per
model that changes). The CLI's `plan` and `apply` render these reports.
"""

from smsurgery.recipes.recipe_file import Recipe, Step, load

__all__ = ["Recipe", "Step", "load"]
