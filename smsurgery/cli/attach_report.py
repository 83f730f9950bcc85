"""How the attachment commands (image-input, example-input, labels) print what they published.

They share the first line (what was published, by which route) and the
JSON form; only the lines about the new signature differ, given by each
command's own `render`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smsurgery.cli.common import out, print_json


def print_report(report: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    """The report as JSON, or the shared headline and then `render`'s lines."""
    if as_json:
        print_json(report)
        return
    out.print(f"published {report['base']} version {report['version']} ({report['route']} route)", style="bold")
    render(report)
