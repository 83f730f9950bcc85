"""Markdown renderings of `check` and `diff` reports, for a pull request comment.

Rendered from the same JSON-ready dicts as `--json`, so the comment, the
JSON and the tables never disagree. GitHub-flavoured Markdown: one heading
with the verdict, then a table; pipes and newlines in cells are escaped.
"""

from __future__ import annotations

from typing import Any

_ICONS = {"error": "❌", "warning": "⚠️", "clean": "✅", "breaking": "❌", "compatible": "⚠️", "internal": "ℹ️"}


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _where(data: dict[str, Any]) -> str:
    return f"{data['base']}@{data['version']}" if data.get("version") is not None else data["path"]


def check_markdown(data: dict[str, Any]) -> str:
    counts = data["counts"]
    verdict = data["verdict"]
    icon = _ICONS["clean"] if verdict == "clean" else _ICONS["error" if counts["error"] else "warning"]
    heading = f"### {icon} smsurgery check: `{cell(_where(data))}` — {verdict}"
    summary = (
        f"{counts['error']} error(s), {counts['warning']} warning(s); tags [{','.join(data['tags'])}], "
        f"ops checked against TensorFlow {data['target_tf']}"
    )
    if data.get("loaded") is not None:
        summary += "; loaded with the TF1 session loader" if data["loaded"] else "; the TF1 session loader failed"
    parts = [heading, "", summary + "."]
    if data["findings"]:
        rows = [
            [f"{_ICONS[f['severity']]} {f['severity']}", f"`{f['code']}`", f["subject"], f["message"], f["fix"]]
            for f in data["findings"]
        ]
        parts += ["", table(["severity", "code", "about", "finding", "fix"], rows)]
    return "\n".join(parts) + "\n"


def _side(side: dict[str, Any]) -> str:
    return f"`{cell(_where(side))}` ({side['kind'].upper()} export)"


def _change_subject(change: dict[str, Any]) -> str:
    """`signature 'predict' added`, `signature 'a': input 'x' shape changed`, `tag set removed`."""
    subject, action = change["kind"].rsplit("_", 1)
    subject = subject.replace("_", " ")
    if change.get("alias"):
        subject += f" '{change['alias']}'"
    elif change.get("name"):
        subject += f" {change['name']}"
    if change.get("signature") is not None:
        subject = (
            f"signature '{change['signature']}'"
            if subject == "signature"
            else (f"signature '{change['signature']}': {subject}")
        )
    if change.get("field") and change["field"] != change["kind"].rsplit("_", 1)[0]:
        subject += f" {change['field']}"
    return f"{subject} {action}"


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        if "dtype" in value:
            return f"{value['dtype']} {value.get('shape')}"
        if "method_name" in value:
            return f"{value['method_name']}({', '.join(value.get('inputs', []))})"
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def diff_markdown(data: dict[str, Any]) -> str:
    verdict = data["verdict"]
    heading = f"### {_ICONS.get(verdict, '✅')} smsurgery diff — {verdict}"
    parts = [heading, "", f"old: {_side(data['old'])}  ", f"new: {_side(data['new'])}"]
    if not data["changes"]:
        return "\n".join([*parts, "", "No changes."]) + "\n"
    counts = ", ".join(f"{n} {v}" for v, n in data["summary"].items())
    rows = [
        [f"{_ICONS[c['verdict']]} {c['verdict']}", _change_subject(c), _value(c["old"]), _value(c["new"]), c["note"]]
        for c in data["changes"]
    ]
    parts += ["", f"{counts}.", "", table(["verdict", "change", "old", "new", "note"], rows)]
    return "\n".join(parts) + "\n"


def config_markdown(data: dict[str, Any]) -> str:
    status = {0: "clean", 1: "warnings", 3: "errors"}[data["exit_status"]]
    parts = [f"## smsurgery config check: `{cell(data['path'])}` — {status}", ""]
    if data["findings"]:
        rows = [[f"{_ICONS[f['severity']]} {f['severity']}", f"`{f['code']}`", f["subject"], f["message"]]
                for f in data["findings"]]  # fmt: skip
        parts += [table(["severity", "code", "about", "finding"], rows), ""]
    for model in data["models"]:
        for report in model["checks"]:
            parts.append(check_markdown(report))
    return "\n".join(parts).rstrip("\n") + "\n"
