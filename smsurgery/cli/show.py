"""`smsurgery show`: versions, tag sets, signatures, variables, assets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smsurgery.cli.common import (
    JsonOpt,
    PathArg,
    SignatureOpt,
    TagsOpt,
    VersionOpt,
    human_bytes,
    note,
    out,
    parse_tags,
    print_json,
    tensor_location,
    warn,
)
from smsurgery.core.model import shape_text
from smsurgery.inspect.describe import describe


def show(
    path: PathArg,
    version: VersionOpt = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    ops: Annotated[bool, typer.Option("--ops", help="Add a histogram of the ops in the graph.")] = False,
    graph: Annotated[
        bool | None,
        typer.Option(
            "--graph/--no-graph",
            help="Read the graph for placements and the warnings that need it (default: when it is at most 8 MiB).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's versions, tag sets, signatures, variables and assets."""
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
    from rich.table import Table  # here, not at the top: `show --json` never draws a table

    where = report["path"]
    if report["version"] is not None:
        versions = ", ".join(str(v) for v in report["versions"])
        where = f"{report['base']} version {report['version']} (versions: {versions})"
    out.print(where, style="bold")
    tag_sets = "; ".join("[" + ",".join(t) + "]" for t in report["tag_sets"])
    out.print(
        f"{report['kind'].upper()} export, meta graph [{','.join(report['tags'])}] "
        f"(tag sets: {tag_sets}); default signature: {report['default_signature'] or 'none'}"
    )
    variables = report["variables"]
    out.print(
        f"variables: {variables['count']} ({human_bytes(variables['bytes'])})"
        if variables["present"]
        else "variables: none"
    )
    for key, signature in report["signatures"].items():
        table = Table(title=f"signature '{key}'  {signature['method_name']}", title_justify="left")
        for column in ("", "alias", "dtype", "shape", "tensor"):
            table.add_column(column)
        for direction in ("inputs", "outputs"):
            for alias, tensor in signature[direction].items():
                table.add_row(
                    direction[:-1], alias, tensor["dtype"], shape_text(tensor["shape"]), tensor_location(tensor)
                )
        out.print(table)
    if report.get("placements"):
        pins = ", ".join(f"{device} ({count})" for device, count in report["placements"].items())
        out.print(f"device placements (nodes): {pins}")
    files = report["assets"] + report["assets_extra"]
    if files:
        table = Table(title="files", title_justify="left")
        table.add_column("path")
        table.add_column("size", justify="right")
        for entry in files:
            table.add_row(entry["path"], human_bytes(entry["bytes"]))
        out.print(table)
    if "ops" in report:
        table = Table(title="ops", title_justify="left")
        table.add_column("op")
        table.add_column("count", justify="right")
        for op, count in report["ops"].items():
            table.add_row(op, str(count))
        out.print(table)


def register(app: typer.Typer) -> None:
    app.command("show")(show)
