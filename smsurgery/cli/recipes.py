"""`smsurgery plan RECIPE BASE...` and `smsurgery apply RECIPE BASE...`: one change, many model bases."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from smsurgery.cli.common import err, note, out, print_json, warn
from smsurgery.cli.options import JsonOpt
from smsurgery.cli.publish_options import publish_options
from smsurgery.cli.tables import Column, TextTable, print_table
from smsurgery.publishing.target import PublishTarget

RecipeArg = Annotated[str, typer.Argument(metavar="RECIPE", help="Recipe file (TOML, or JSON).", show_default=False)]
BasesArg = Annotated[
    list[str] | None, typer.Argument(metavar="BASE...", help="Model bases (globs allowed).", show_default=False)
]
FromOpt = Annotated[str | None, typer.Option("--from", help="A file with one model base per line.", show_default=False)]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", help="I/N (0 <= I < N): this job's stable share of the bases.", show_default=False),
]
FormatOpt = Annotated[str, typer.Option("--format", help="text or markdown (for a pull request comment).")]


def _bases(bases: list[str] | None, from_file: str | None, shard: str | None) -> list[str]:
    from smsurgery.recipes.plan import expand_bases, select_shard

    return select_shard(expand_bases(bases or [], from_file), shard)


def plan(
    recipe: RecipeArg,
    bases: BasesArg = None,
    from_file: FromOpt = None,
    shard: ShardOpt = None,
    fmt: FormatOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """Show what RECIPE would change in each model, its diff verdict and whether [require] holds; write nothing.

    Exit status: 0 nothing to do, 1 changes planned, 3 a requirement would fail, 2 errors.
    """
    from smsurgery.recipes import load

    _check_format(fmt)
    report = load(recipe).plan(_bases(bases, from_file, shard))
    if as_json:
        print_json(report.to_json())
    elif fmt == "markdown":
        out.print(plan_markdown(report.to_json()), markup=False, highlight=False)
    else:
        render_plan(report.to_json())
    raise typer.Exit(report.exit_status)


def apply(
    recipe: RecipeArg,
    bases: BasesArg = None,
    from_file: FromOpt = None,
    shard: ShardOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Models to edit at once (processes).")] = 1,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Go on with the others after a failure.")] = False,
    as_json: JsonOpt = False,
    *,
    target: PublishTarget,
) -> None:
    """Apply RECIPE: one new, verified version per model that changes; a model already in its end state is left alone.

    Exit status: 0 every model published or had nothing to do, 3 a requirement held a model back, 2 failures.
    """
    from smsurgery.recipes import load

    loaded = load(recipe)
    chosen = _bases(bases, from_file, shard)
    with _ModelProgress(len(chosen)) as progress:
        report = loaded.apply(chosen, jobs=jobs, keep_going=keep_going, target=target, on_done=progress.advance)
    if as_json:
        print_json(report.to_json())
    else:
        render_apply(report.to_json())
    raise typer.Exit(report.exit_status)


class _ModelProgress:
    """A bar over models on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.progress = (
            Progress(TextColumn("models"), BarColumn(), MofNCompleteColumn(), console=err, transient=True)
            if err.is_terminal
            else None
        )
        self.task = self.progress.add_task("models", total=total) if self.progress else None

    def __enter__(self) -> _ModelProgress:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()

    def advance(self, _outcome: Any) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "markdown"):
        raise typer.BadParameter(f"--format must be text or markdown, not {fmt!r}")


def render_plan(report: dict[str, Any]) -> None:
    columns = [Column(c) for c in ("model", "version", "status", "verdict", "what changes")]
    table = TextTable(f"plan of {report['recipe']}", columns)
    for model in report["models"]:
        what = "; ".join(d for s in model["steps"] if s["status"] == "applied" for d in s["details"])
        table.add_row(
            model["base"], str(model["version"] or ""), model["status"], model["verdict"], model["reason"] or what
        )
    print_table(table)
    for message in report["warnings"]:
        warn(message)
    summary = report["summary"]
    note(", ".join(f"{n} {status}" for status, n in summary.items()) + f"; exit {report['exit_status']}")


def plan_markdown(report: dict[str, Any]) -> str:
    summary = ", ".join(f"{n} {status}" for status, n in report["summary"].items())
    lines = [f"### smsurgery plan: `{report['recipe']}`", "", summary, ""]
    lines += ["| model | version | status | verdict | what changes |", "|---|---|---|---|---|"]
    for model in report["models"]:
        what = "<br>".join(d for s in model["steps"] if s["status"] == "applied" for d in s["details"])
        cell = (model["reason"] or what).replace("|", "\\|")
        lines.append(
            f"| `{model['base']}` | {model['version'] or ''} | {model['status']} | {model['verdict']} | {cell} |"
        )
    lines += [f"> warning: {message}" for message in report["warnings"]]
    return "\n".join(lines)


def render_apply(report: dict[str, Any]) -> None:
    table = TextTable(
        f"apply of {report['recipe']}", [Column(c) for c in ("model", "outcome", "new version", "reason")]
    )
    for model in report["models"]:
        table.add_row(model["base"], model["status"], model["path"] or "", model["reason"] or "")
    print_table(table)
    note(", ".join(f"{n} {status}" for status, n in report["summary"].items() if n) or "no models")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("apply")(publish_options(apply))
