"""What `smsurgery diff` prints (JSON, markdown or tables) and the exit status it ends with.

Free of typer, so that `fast` can run a plain `diff` without building the
typer app; `diff` declares the command's options and calls `diff_models`.
"""

from __future__ import annotations

import sys
from typing import Any

from smsurgery.cli.common import parse_tags, print_json, say
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import METHOD_PREFIX, shape_text
from smsurgery.inspect.diff import DiffReport, diff

VERDICT_STYLES = {"breaking": "bold red", "compatible": "yellow", "internal": "dim"}
_DEEP_GROUPS = {"variable": "variables (--deep)", "file": "files under assets/ and assets.extra/ (--deep)"}


def diff_models(
    old: str,
    new: str | None = None,
    tags: str | None = None,
    signature: str | None = None,
    deep: bool = False,
    as_json: bool = False,
    fmt: str = "text",
) -> int:
    """`smsurgery diff` with the values its options parsed to; returns the exit status (0, 1 or 3)."""
    if fmt not in ("text", "markdown"):
        raise SmsurgeryError(f"unknown --format '{fmt}'", hint="choose text or markdown")
    report = diff(old, new, tags=parse_tags(tags), signature=signature, deep=deep)
    if as_json:
        print_json(report.to_json())
    elif fmt == "markdown":
        from smsurgery.inspect.markdown import diff_markdown

        sys.stdout.write(diff_markdown(report.to_json()))
    else:
        render_diff(report)
    return report.exit_status


def render_diff(report: DiffReport) -> None:
    """One table per group: the model, each signature in key order, variables, files."""
    data = report.to_json()
    say(f"old: {_side_text(data['old'])}", style="bold")
    say(f"new: {_side_text(data['new'])}", style="bold")
    narrowed = f", signature '{report.signature}'" if report.signature else ""
    say(f"meta graph [{','.join(report.tags)}]{narrowed}")
    if not data["changes"]:
        say(f"no changes (exit {report.exit_status})")
        return
    groups: dict[str, list[dict[str, Any]]] = {}
    for change in data["changes"]:
        groups.setdefault(_group(change), []).append(change)
    for title, changes in groups.items():
        notes = [_note(change) for change in changes]
        headers = ("verdict", "change", "old", "new") + (("note",) if any(notes) else ())
        table = TextTable(title, [Column(header) for header in headers], title_style="bold")
        for change, note in zip(changes, notes, strict=True):
            cells = [_what(change), _value(change, "old"), _value(change, "new")] + ([note] if any(notes) else [])
            table.add_row((change["verdict"], VERDICT_STYLES[change["verdict"]]), *cells)
        print_table(table)
    counts = ", ".join(f"{count} {verdict}" for verdict, count in data["summary"].items())
    say(f"{data['verdict']} ({counts}); exit {report.exit_status}", style=VERDICT_STYLES[data["verdict"]])


def _side_text(side: dict[str, Any]) -> str:
    where = f"{side['base']}@{side['version']}" if side["version"] is not None else side["path"]
    return f"{where} ({side['kind'].upper()} export)"


def _group(change: dict[str, Any]) -> str:
    subject = change["kind"].rsplit("_", 1)[0]
    if subject in _DEEP_GROUPS:
        return _DEEP_GROUPS[subject]
    return f"signature '{change['signature']}'" if change["signature"] is not None else "model"


def _what(change: dict[str, Any]) -> str:
    """`input x: shape`, `signature removed`, `assets/vocab.txt added`, `method_name`."""
    subject, action = change["kind"].rsplit("_", 1)
    if subject == "method":
        return "method_name"
    if subject in ("input", "output"):
        subject = f"{subject} {change['alias']}"
    elif subject in _DEEP_GROUPS:
        subject = change["name"]
    else:
        subject = subject.replace("_", " ")
    return f"{subject}: {change['field']}" if action == "changed" and change["field"] else f"{subject} {action}"


def _note(change: dict[str, Any]) -> str:
    if change["counterpart"] is None:
        return change["note"] or ""
    arrow = "to" if change["kind"].endswith("_removed") else "from"
    return f"{change['note']} {arrow} '{change['counterpart']}'"


def _value(change: dict[str, Any], side: str) -> str:
    value = change[side]
    if change["field"] == "method_name":
        return value.removeprefix(METHOD_PREFIX)
    if change["field"] == "shape":
        return shape_text(value)
    if value is None:
        return "" if change["field"] is None else "none"
    if isinstance(value, dict) and "method_name" in value:
        method = value["method_name"].removeprefix(METHOD_PREFIX)
        return f"{method}({', '.join(value['inputs'])}) -> {', '.join(value['outputs']) or 'nothing'}"
    if isinstance(value, dict) and "encoding" in value:
        location = value["name"] if value["name"] is not None else value["encoding"]
        return f"{value['dtype']} {shape_text(value['shape'])} {location}"
    if isinstance(value, dict):  # a variable
        return f"{value['dtype']} {shape_text(value['shape'])} {value['bytes']} B"
    if isinstance(value, list):  # a tag set
        return "[" + ",".join(value) + "]"
    return str(value)
