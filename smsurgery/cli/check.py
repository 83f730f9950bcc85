"""`smsurgery check`: will TensorFlow Serving load and serve this version?

Exit status: 0 clean, 1 warnings only, 3 errors (2: the command itself failed).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from smsurgery.cli.common import out, parse_tags, print_json
from smsurgery.cli.options import JsonOpt, PathArg, TagsOpt
from smsurgery.core.errors import SmsurgeryError

SEVERITY_STYLES = {"error": "bold red", "warning": "yellow"}
FORMATS = ("text", "markdown")

FormatOpt = Annotated[
    str, typer.Option("--format", help="Human output: text (tables) or markdown (a pull request comment).")
]


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise SmsurgeryError(f"unknown --format '{value}'", hint=f"choose {' or '.join(FORMATS)}")
    return value


def check_command(
    path: PathArg,
    tags: TagsOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "text",
    load: Annotated[
        bool, typer.Option("--load", help="Also load with TensorFlow as Serving does, replay warmup, run signatures.")
    ] = False,
    batching: Annotated[
        str | None,
        typer.Option("--batching", help="Serving's batching parameters file (text proto) to check the model against."),
    ] = None,
    target_tf: Annotated[
        str | None,
        typer.Option("--target-tf", help="TensorFlow release (X.Y) whose op list the ops must be in.", metavar="X.Y"),
    ] = None,
) -> None:
    """Report what would make TensorFlow Serving refuse or fail this version (exit 0 / 1 warnings / 3 errors)."""
    from smsurgery.inspect.check import check

    check_format(fmt)
    report = check(path, tags=parse_tags(tags), target_tf=target_tf, batching=batching, load=load)
    data = report.to_json()
    if as_json:
        print_json(data)
    elif fmt == "markdown":
        from smsurgery.inspect.markdown import check_markdown

        sys.stdout.write(check_markdown(data))
    else:
        render_check(data)
    raise typer.Exit(report.exit_status)


def render_check(data: dict[str, Any]) -> None:
    where = data["path"] if data["version"] is None else f"{data['base']} version {data['version']}"
    out.print(where, style="bold")
    versions = data["versions"]
    if versions:
        out.print(
            f"versions Serving reads: {', '.join(map(str, versions['all'])) or 'none'}; latest policy serves: "
            f"{versions['latest'] if versions['latest'] is not None else 'nothing'}"
        )
    for item in data["findings"]:  # a block per finding: long messages stay readable in 80 columns
        line = Text()
        line.append(f"{item['severity']:<8}", style=SEVERITY_STYLES[item["severity"]])
        line.append(f"{item['code']}  {item['subject']}", style="bold")
        out.print(line)
        out.print(f"        {item['message']}")
        out.print(f"        fix: {item['fix']}")
    counts = data["counts"]
    loaded = "" if data["loaded"] is None else ("; TF1 loader: loaded" if data["loaded"] else "; TF1 loader: failed")
    out.print(
        f"{data['verdict']}: {counts['error']} error(s), {counts['warning']} warning(s) "
        f"(ops against TensorFlow {data['target_tf']}{loaded}); exit {data['exit_status']}",
        style=SEVERITY_STYLES.get(data["verdict"].rstrip("s"), "green"),
    )


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)
