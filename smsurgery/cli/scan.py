"""`smsurgery scan`: ops that touch files, the network, or run code, per signature.

Exit status: 0 when nothing is found, 3 when risky ops are found (so that a
deployment script can gate on it), 2 for errors as every command.
"""

from __future__ import annotations

from typing import Any

import typer

from smsurgery.cli.common import err, parse_tags, print_json, say
from smsurgery.cli.options import JsonOpt, PathArg, SignatureOpt, TagsOpt, VersionOpt
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.inspect.scan import scan as scan_path

EXIT_FOUND = 3


def scan(
    path: PathArg,
    version: VersionOpt = None,
    tags: TagsOpt = None,
    signature: SignatureOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List ops that read or write files, use the network or run code (exit 3 if any)."""
    report = scan_path(path, version=version, tags=parse_tags(tags), signature=signature)
    if as_json:
        print_json(report)
    else:
        render_scan(report)
    if not report["clean"]:
        raise typer.Exit(EXIT_FOUND)


def _groups(meta: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups = [(f"signature '{key}'", findings) for key, findings in meta["signatures"].items()]
    groups += [(f"init op ({source})", findings) for source, findings in meta["init"].items()]
    groups.append(("elsewhere (no signature or init op reaches it)", meta["elsewhere"]))
    return groups


def render_scan(report: dict[str, Any]) -> None:
    where = report["path"] if report["version"] is None else f"{report['base']} version {report['version']}"
    say(where, style="bold")
    for meta in report["meta_graphs"]:
        tags = ",".join(meta["tags"]) or "(no tags)"
        clean = [group for group, findings in _groups(meta) if not findings and not group.startswith("elsewhere")]
        if clean:
            say(f"meta graph [{tags}], nothing found in: {', '.join(clean)}")
        for group, findings in _groups(meta):
            if findings:
                print_table(_findings_table(f"meta graph [{tags}], {group}", findings))
        if meta["saver_ops"]:
            say(f"checkpoint ops of the saver (expected, not counted): {', '.join(meta['saver_ops'])}")
    if report["clean"]:
        err.print("scan: no risky ops found")
    else:
        err.print(f"scan: {report['count']} risky op(s) found", style="red")


def _findings_table(title: str, findings: list[dict[str, Any]]) -> TextTable:
    # function/node names are long: a cell that does not fit is folded, never cut
    table = TextTable(title, [Column(c, overflow="fold") for c in ("op", "category", "node", "why")])
    for finding in findings:
        node = finding["node"] if finding["function"] is None else f"{finding['function']}/{finding['node']}"
        if finding.get("embedded_in"):
            node = f"{finding['embedded_in']} > {node}"  # inside a graph serialized in that node's input
        table.add_row(finding["op"], finding["category"], node, finding["reason"])
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("scan")(scan)
