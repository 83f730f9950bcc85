"""The recipe file: ordered steps of registered edit kinds, rules for which models they fit, requirements.

A recipe is TOML (JSON with the same structure is accepted):

    [require]
    verdict = "compatible"        # the worst diff verdict allowed: unchanged|internal|compatible|breaking
    check = "no-new-errors"       # what `smsurgery check` may find in the result

    [[steps]]
    op = "rename_signature"       # any kind `signature apply` knows, with its fields
    old = "serve"
    new = "serve_raw"
    [steps.match]                 # optional: the step applies only to models that match
    signature = "serve"

Everything is validated before any model is read, and every error names the
step's line in the file: a fleet-wide change must not fail on model 37 for a
typo that was visible from the start.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InvalidEdit, PathNotFound, SmsurgeryError, listing
from smsurgery.core.user_files import read_user_file
from smsurgery.edits.kinds import Edit, edit_from_json

RECIPE_SCHEMA = "smsurgery.recipe/1"
VERDICTS = ("unchanged", "internal", "compatible", "breaking")
MATCH_RULES = {
    "signature": "the model has this signature key",
    "no_signature": "the model does not have this signature key",
    "alias": "some signature has this input or output alias (SIGNATURE/ALIAS to name one signature)",
    "input_dtype": "some input has this dtype (DT_FLOAT)",
    "kind": "tf1 or tf2",
    "tags": "the model has this tag set (comma-separated)",
}
CHECK_LEVELS = ("clean", "no-errors", "no-new-errors")
REQUIRE_RULES = {
    "verdict": f"the worst diff verdict allowed: {', '.join(VERDICTS)}",
    "check": "what `smsurgery check` may find in the result: clean (nothing), no-errors, or no-new-errors",
}
MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class Step:
    """One edit of the recipe, its match rules, and where it is written (for messages)."""

    edit: Edit
    match: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None

    def where(self, number: int) -> str:
        return f"step {number}" + (f" (line {self.line})" if self.line else "")


@dataclass(frozen=True)
class RecipeFile:
    """A validated recipe: its steps, requirements and meta graph; `smsurgery.recipes.Recipe` adds plan/apply."""

    steps: tuple[Step, ...]
    require: Mapping[str, str] = field(default_factory=dict)
    source: str = "<recipe>"
    tags: tuple[str, ...] | None = None


def read_recipe(path: str | Path) -> RecipeFile:
    """Read and validate a recipe file (TOML, or JSON by its first character)."""
    file = Path(path)
    if not file.exists():
        raise PathNotFound(f"no recipe file {file}")
    # The type first (a device or FIFO is refused), then at most the limit: never the whole of a huge file.
    data = read_user_file(file, what="recipe", limit=MAX_RECIPE_BYTES, error=InvalidEdit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEdit(f"recipe {file} is not UTF-8 text (byte {error.start})") from error
    return parse(text, source=str(file))


def parse(text: str, *, source: str = "<recipe>") -> RecipeFile:
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidEdit(f"recipe {source} is not valid TOML: {error}") from error
    except (ValueError, RecursionError) as error:
        raise InvalidEdit(f"recipe {source} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise InvalidEdit(f"recipe {source} must be a table with [[steps]]")
    unknown = sorted(set(document) - {"steps", "require", "tags", "schema"})
    if unknown:
        raise InvalidEdit(f"recipe {source}: unknown key(s) {listing(unknown)}", hint="known: steps, require, tags")
    lines = _step_lines(text)
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InvalidEdit(f"recipe {source} has no [[steps]]")
    steps = tuple(_step(item, number, lines, source) for number, item in enumerate(raw_steps, 1))
    return RecipeFile(steps, _require(document.get("require", {}), source), source, _tags(document.get("tags"), source))


def _step_lines(text: str) -> list[int]:
    """The line of each `[[steps]]` header (TOML) or `"op"` key (JSON), in order."""
    marker = '"op"' if text.lstrip().startswith("{") else "[[steps]]"
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith(marker)]


def _step(item: Any, number: int, lines: list[int], source: str) -> Step:
    line = lines[number - 1] if number - 1 < len(lines) else None
    where = f"recipe {source}, step {number}" + (f" (line {line})" if line else "")
    if not isinstance(item, dict):
        raise InvalidEdit(f"{where}: a step must be a table with an 'op'")
    fields = {k: v for k, v in item.items() if k != "match"}
    match = item.get("match", {})
    if not isinstance(match, dict):
        raise InvalidEdit(f"{where}: [steps.match] must be a table")
    unknown = sorted(set(match) - set(MATCH_RULES))
    if unknown:
        raise InvalidEdit(f"{where}: unknown match rule(s) {listing(unknown)}", hint=f"known: {listing(MATCH_RULES)}")
    if any(not isinstance(v, str) or not v for v in match.values()):
        raise InvalidEdit(f"{where}: match rules take non-empty strings")
    try:
        edit = edit_from_json(fields)
    except SmsurgeryError as error:
        raise InvalidEdit(f"{where}: {error.message}", hint=error.hint) from error
    return Step(edit, dict(match), line)


def _require(data: Any, source: str) -> dict[str, str]:
    if not isinstance(data, dict):
        raise InvalidEdit(f"recipe {source}: [require] must be a table")
    unknown = sorted(set(data) - set(REQUIRE_RULES))
    if unknown:
        raise InvalidEdit(f"recipe {source}: unknown requirement(s) {listing(unknown)}", hint="known: verdict, check")
    verdict = data.get("verdict")
    if verdict is not None and verdict not in VERDICTS:
        raise InvalidEdit(f"recipe {source}: require.verdict {verdict!r} is not one of {listing(VERDICTS)}")
    level = data.get("check")
    if level is not None and level not in CHECK_LEVELS:
        raise InvalidEdit(f"recipe {source}: require.check {level!r} is not one of {listing(CHECK_LEVELS)}")
    return dict(data)


def _tags(data: Any, source: str) -> tuple[str, ...] | None:
    if data is None:
        return None
    if not isinstance(data, str) or not data.strip():
        raise InvalidEdit(f'recipe {source}: tags must be a comma-separated string such as "serve"')
    return tuple(t.strip() for t in data.split(",") if t.strip())
