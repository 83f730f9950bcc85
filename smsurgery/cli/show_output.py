"""What `smsurgery show` prints: the report as JSON or tables, its warnings and notes.

Free of typer, so that `fast` can run a plain `show` without building the
typer app; `show` declares the command's options and calls `show_model`.
"""

from __future__ import annotations

from typing import Any

from smsurgery.cli.common import (
    human_bytes,
    note,
    parse_tags,
    print_json,
    say,
    tensor_location,
    warn,
)
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.core.model import shape_text
from smsurgery.inspect.describe import describe


def show_model(
    path: str,
    version: int | None = None,
    tags: str | None = None,
    signature: str | None = None,
    ops: bool = False,
    graph: bool | None = None,
    as_json: bool = False,
) -> None:
    """`smsurgery show` with the values its options parsed to."""
    report = describe(path, version=version, tags=parse_tags(tags), signature=signature, ops=ops, graph=graph)
    if as_json:
        print_json(report)
    else:
        render_show(report)
    for message in report["warnings"]:
        warn(message)
    if not report["graph_read"] and graph is None:
        note(
            f"the graph ({human_bytes(report['graph_bytes'])}) was not read: placements and the warnings that need "
            "it were skipped; --graph reads it"
        )


def render_show(report: dict[str, Any]) -> None:
    where = report["path"]
    if report["version"] is not None:
        versions = ", ".join(str(v) for v in report["versions"])
        where = f"{report['base']} version {report['version']} (versions: {versions})"
    say(where, style="bold")
    tag_sets = "; ".join("[" + ",".join(t) + "]" for t in report["tag_sets"])
    say(
        f"{report['kind'].upper()} export, meta graph [{','.join(report['tags'])}] "
        f"(tag sets: {tag_sets}); default signature: {report['default_signature'] or 'none'}"
    )
    variables = report["variables"]
    counted = f"variables: {variables['count']} ({human_bytes(variables['bytes'])})"
    say(counted if variables["present"] else "variables: none")
    for key, signature in report["signatures"].items():
        columns = [Column(header) for header in ("", "alias", "dtype", "shape", "tensor")]
        table = TextTable(f"signature '{key}'  {signature['method_name']}", columns)
        for direction in ("inputs", "outputs"):
            for alias, tensor in signature[direction].items():
                table.add_row(
                    direction[:-1], alias, tensor["dtype"], shape_text(tensor["shape"]), tensor_location(tensor)
                )
        print_table(table)
    if report.get("placements"):
        pins = ", ".join(f"{device} ({count})" for device, count in report["placements"].items())
        say(f"device placements (nodes): {pins}")
    files = report["assets"] + report["assets_extra"]
    if files:
        table = TextTable("files", [Column("path"), Column("size", justify="right")])
        for entry in files:
            table.add_row(entry["path"], human_bytes(entry["bytes"]))
        print_table(table)
    if "ops" in report:
        table = TextTable("ops", [Column("op"), Column("count", justify="right")])
        for op, count in report["ops"].items():
            table.add_row(op, str(count))
        print_table(table)
