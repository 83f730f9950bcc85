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

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InvalidEdit, PathNotFound, SmsurgeryError, listing
from smsurgery.core.json_fields import wrong_field
from smsurgery.core.user_files import read_user_file
from smsurgery.edits.kinds import EDIT_TYPES, Edit, edit_from_json
from smsurgery.recipes.attachments import ATTACH_TYPES, Attachment
from smsurgery.recipes.matching import MATCH_RULES, normalize

RECIPE_SCHEMA = "smsurgery.recipe/1"
VERDICTS = ("unchanged", "internal", "compatible", "breaking")
RULE_TABLES = ("match", "when")  # `when`: the rules' other name, for kinds with a field `match` (set_devices)
CHECK_LEVELS = ("clean", "no-errors", "no-new-errors")
REQUIRE_RULES = {
    "verdict": f"the worst diff verdict allowed: {', '.join(VERDICTS)}",
    "check": "what `smsurgery check` may find in the result: clean (nothing), no-errors, or no-new-errors",
}
MAX_RECIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class Step:
    """One edit of the recipe, its match rules, and where it is written (for messages)."""

    edit: Edit | Attachment
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

    @property
    def edits(self) -> tuple[tuple[int, Step], ...]:
        """(number, step) of the in-memory edit steps, which come first."""
        return tuple((n, s) for n, s in enumerate(self.steps, 1) if not isinstance(s.edit, Attachment))

    @property
    def attachments(self) -> tuple[tuple[int, Step], ...]:
        """(number, step) of the attachment steps (image_input, warmup, ...), which come last."""
        return tuple((n, s) for n, s in enumerate(self.steps, 1) if isinstance(s.edit, Attachment))


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
    layout = step_layout(text)
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InvalidEdit(f"recipe {source} has no [[steps]]")
    steps = tuple(
        _step(item, number, layout[number - 1] if number <= len(layout) else {}, source)
        for number, item in enumerate(raw_steps, 1)
    )
    _attachments_last(steps, source)
    return RecipeFile(steps, _require(document.get("require", {}), source), source, _tags(document.get("tags"), source))


def step_layout(text: str) -> list[dict[str, int]]:
    """Per step, the line of each of its keys ("" for the step itself, "match.RULE" for a rule).

    TOML: a `[[steps]]` header starts a step and `[steps.match]` its rules;
    JSON: each `"op"` key starts a step. Good enough to point at a line; the
    parsers themselves (tomllib, json) say nothing about lines.
    """
    is_json = text.lstrip().startswith("{")
    layout: list[dict[str, int]] = []
    current: dict[str, int] | None = None
    prefix = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if (not is_json and line.startswith("[[steps]]")) or (is_json and '"op"' in line):
            current, prefix = {"": number}, ""
            layout.append(current)
        elif not is_json and line.startswith("["):
            table = line.strip("[] ")
            prefix = table.removeprefix("steps.") + "." if table in ("steps.match", "steps.when") else ""
            if current is not None and prefix:
                current.setdefault(prefix[:-1], number)
            elif not prefix:
                current = None
        if current is not None:
            key = line.split("=" if not is_json else ":", 1)[0].strip().lstrip("{[ ").strip('"')
            if key and (("=" in line) or (is_json and ":" in line)):
                current.setdefault(prefix + key, number)
                if is_json and key in RULE_TABLES and "{" in line and "}" not in line:
                    prefix = key + "."
                elif is_json and "}" in line:
                    prefix = ""
    return layout


KINDS: dict[str, type] = {**EDIT_TYPES, **ATTACH_TYPES}


def _attachments_last(steps: tuple[Step, ...], source: str) -> None:
    """An attachment builds on a published version, so no in-memory edit may follow one."""
    first = next((n for n, s in enumerate(steps, 1) if isinstance(s.edit, Attachment)), None)
    later = next((n for n, s in enumerate(steps, 1) if first and n > first and isinstance(s.edit, Edit)), None)
    if first is not None and later is not None:
        step = steps[later - 1]
        raise InvalidEdit(
            f"{source}{f':{step.line}' if step.line else ''}: step {later} ({step.edit.op}) is an edit in memory "
            f"after step {first} ({steps[first - 1].edit.op}), an attachment",
            hint=f"attachments ({listing(sorted(ATTACH_TYPES))}) build on the edited model: put them last",
        )


def kind_fields(op: str) -> tuple[list[str], list[str]]:
    """(every field, the required ones) of a step kind, in declaration order."""
    cls = KINDS[op]
    every = [f.name for f in dataclasses.fields(cls)]
    required = [
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    return every, required


def _step(item: Any, number: int, lines: dict[str, int], source: str) -> Step:
    line = lines.get("")

    def fail(message: str, key: str = "", hint: str | None = None) -> InvalidEdit:
        at = lines.get(key) or lines.get(key.split(".")[0]) or line  # `match = {...}` inline: its line
        return InvalidEdit(f"{source}{f':{at}' if at else ''}: step {number}{message}", hint=hint)

    if not isinstance(item, dict):
        raise fail(": a step must be a table with an 'op'")
    op = item.get("op")
    if not isinstance(op, str) or op not in KINDS:
        what = "has no 'op'" if op is None else f"has unknown kind {op!r}"
        raise fail(f" {what}; known kinds: {listing(sorted(KINDS))}", "op")
    fields, required = kind_fields(op)
    rules, arguments = _split_rules(item, fields, lambda m, k="", h=None: fail(f" ({op}){m}", k, h))
    unknown = [k for k in arguments if k != "op" and k not in fields]
    if unknown:
        raise fail(f" ({op}) has no field '{unknown[0]}'; its fields are: {listing(fields)}", unknown[0])
    missing = [k for k in required if k not in arguments]
    if missing:
        raise fail(f" ({op}) is missing '{missing[0]}'; its fields are: {listing(fields)}")
    wrong = wrong_field(KINDS[op], arguments)
    if wrong is not None:
        raise fail(f" ({op}): {wrong}", wrong.split("'")[1])
    try:
        edit = ATTACH_TYPES[op](**_fields(arguments)) if op in ATTACH_TYPES else edit_from_json(arguments)
    except SmsurgeryError as error:
        raise fail(f" ({op}): {error.message.removeprefix(f'edit {op}: ')}", hint=error.hint) from error
    return Step(edit, rules, line)


def _fields(arguments: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arguments.items() if k != "op"}


def _split_rules(item: dict[str, Any], fields: list[str], fail: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """The step's match rules and its edit's fields.

    `match` is the rules table, unless the kind has a field `match` and the
    value is not a table (set_devices' device glob); such a step names its
    rules `[steps.when]`. A table is never an edit field value here, so the
    two readings cannot be confused.
    """
    arguments = dict(item)
    tables = {}
    for name in RULE_TABLES:
        value = arguments.get(name)
        if name == "match" and "match" in fields and not isinstance(value, dict):
            continue
        if name in arguments:
            tables[name] = arguments.pop(name)
    if len(tables) > 1:
        raise fail(": give its rules as [steps.match] or [steps.when], not both", "when")
    name, rules = next(iter(tables.items()), ("match", {}))
    if not isinstance(rules, dict):
        raise fail(f": [steps.{name}] must be a table of rules; known rules: {listing(MATCH_RULES)}", name)
    for rule, value in rules.items():
        if rule not in MATCH_RULES:
            raise fail(f": unknown match rule '{rule}'; known rules: {listing(MATCH_RULES)}", f"{name}.{rule}")
        if not isinstance(value, str) or not value:
            raise fail(f": match rule '{rule}' takes a non-empty string", f"{name}.{rule}")
        try:
            rules[rule] = normalize(rule, value)
        except InvalidEdit as error:
            raise fail(f": {error.message}", f"{name}.{rule}", error.hint) from error
    return rules, arguments


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
