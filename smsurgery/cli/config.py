"""`smsurgery config write|check`: TensorFlow Serving's models.config.

`config check` exits like `check`: 0 clean, 1 warnings only, 3 errors, 2 when
the file itself cannot be read or parsed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smsurgery.cli.check import SEVERITY_STYLES, FormatOpt, check_format, render_check
from smsurgery.cli.common import note, parse_tags, print_json, say
from smsurgery.cli.options import JsonOpt, TagsOpt
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.core.errors import PublishError

config_app = typer.Typer(help="Write or check a TensorFlow Serving models.config.", no_args_is_help=True)


@config_app.command("write")
def config_write(
    bases: Annotated[list[str], typer.Argument(help="Model bases (folders of integer versions).", show_default=False)],
    names: Annotated[
        list[str] | None, typer.Option("--name", help="Model name, once per BASE (default: the folder name).")
    ] = None,
    policy: Annotated[str, typer.Option("--policy", help="latest, all, or specific:1,2.")] = "latest",
    labels: Annotated[
        list[str] | None, typer.Option("--label", help="Version label NAME=VERSION (e.g. stable=3); repeatable.")
    ] = None,
    out_file: Annotated[
        str | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).", show_default=False)
    ] = None,
) -> None:
    """Write a ModelServerConfig text proto (absolute base paths) for these model bases."""
    from smsurgery.serving.models_config import Policy, parse_labels, write_config

    text = write_config(bases, names or [], Policy.parse(policy), parse_labels(labels or []))
    if out_file is None:
        sys.stdout.write(text)
        return
    target = Path(out_file)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)  # a server polling the file never reads half of it
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise PublishError(f"cannot write {target}: {error.strerror}") from error
    note(f"wrote {target} ({len(bases)} model(s))")


@config_app.command("check")
def config_check(
    path: Annotated[str, typer.Argument(help="A models.config (ModelServerConfig text proto).", show_default=False)],
    root_dir: Annotated[
        str | None,
        typer.Option("--root-dir", help="Serving's --model_config_file_base_path, for relative base paths."),
    ] = None,
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "text",
) -> None:
    """Validate a models.config as Serving's server_core does, then check every version it would serve."""
    from smsurgery.serving.models_config import check_config

    check_format(fmt)
    report = check_config(path, root_dir=root_dir, tags=parse_tags(tags))
    data = report.to_json()
    if as_json:
        print_json(data)
    elif fmt == "markdown":
        from smsurgery.inspect.markdown import config_markdown

        sys.stdout.write(config_markdown(data))
    else:
        render_config(data)
    raise typer.Exit(report.exit_status)


def render_config(data: dict[str, Any]) -> None:
    say(f"{data['path']}: {len(data['models'])} model(s)", style="bold")
    if data["findings"]:
        columns = [Column(c, overflow="fold") for c in ("severity", "code", "about", "finding")]
        table = TextTable("models.config", columns)
        for item in data["findings"]:
            severity = (item["severity"], SEVERITY_STYLES[item["severity"]])
            table.add_row(severity, item["code"], item["subject"], item["message"])
        print_table(table)
    for model in data["models"]:
        say(f"model '{model['name']}': serves {', '.join(map(str, model['versions'])) or 'nothing'}")
        for report in model["checks"]:
            render_check(report)
    say(f"exit {data['exit_status']}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
