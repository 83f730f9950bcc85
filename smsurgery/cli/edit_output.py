"""What every edit command does after parsing: edit, publish, render; typer-free.

The typer commands call `run_edits`, and so does `fast`, which runs the
plain proto-only edits without building the typer app: for a `tags set
--no-verify` that takes half a 0.3 s call (issue 16's 20x goal).
On stdout the new version's path and the list of changes (or `--json`);
on stderr warnings, verification and copy progress.
"""

from __future__ import annotations

from typing import Any

from smsurgery.cli.common import err, human_bytes, note, parse_tags, print_json, say, stop_spinner, warn, working
from smsurgery.edits.kinds import Edit
from smsurgery.publishing.target import PublishTarget


def target_from_options(
    new_version: int | None = None,
    out_base: str | None = None,
    copy: bool = False,
    no_verify: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> PublishTarget:
    return PublishTarget(base=out_base, version=new_version, link=not copy, verify=not no_verify, rtol=rtol, atol=atol)


PROGRESS_MIN_BYTES = 64 << 20


class CopyProgress:
    """A rich progress bar on stderr, shown only for files of 64 MB and more."""

    def __init__(self) -> None:
        self.progress: Any = None  # a rich Progress, imported when a big file first shows
        self.tasks: dict[str, Any] = {}

    def __call__(self, relative: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN_BYTES:
            return
        if self.progress is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            stop_spinner()
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                console=err, transient=True,
            )  # fmt: skip
            self.progress.start()
        if relative not in self.tasks:
            label = relative if relative.startswith(("download ", "upload ")) else f"copying {relative}"
            self.tasks[relative] = self.progress.add_task(label, total=total)
        self.progress.update(self.tasks[relative], completed=done)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_edits(
    path: str, edits: list[Edit], *, tags: str | None, target: PublishTarget, drop_object_graph: bool, as_json: bool
) -> None:
    """Apply, publish, render: the body every edit command shares."""
    from smsurgery.edits.draft import edit

    progress = CopyProgress()
    message = "editing, then verifying the new version under TensorFlow" if target.verify else "editing"
    try:
        with working(message):
            result = edit(
                path, edits, tags=parse_tags(tags), target=target.with_progress(progress),
                drop_object_graph=drop_object_graph,
            )  # fmt: skip
    finally:
        progress.close()
    if as_json:
        print_json(result.to_json())
        return
    notes = result.verification.notes if result.verification else []
    for message in result.report.warnings + [n for n in notes if n not in result.checks]:
        warn(message)
    published = result.published
    if published is None:  # the edits found nothing to change
        return
    say(f"published {published.path} (version {published.version} of {published.base})")
    for change in result.report.changes:
        say(f"  {change.detail}")
    if result.remote:
        moved = result.to_json()["transfer"]
        note(
            f"moved {human_bytes(moved['bytes_downloaded'])} down, {human_bytes(moved['bytes_uploaded'])} up, "
            f"{human_bytes(moved['bytes_copied'])} copied inside the store"
        )
    note(verification_line(result.verification))
    for message in result.checks:
        note(message)


def verification_line(report: Any) -> str:
    if report is None:
        return "not verified (--no-verify)"
    counts: dict[str, int] = {}
    for outcome in report.signatures:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    words = {
        "compared": "identical outputs", "both_fail": "fail alike on generated inputs", "new_only": "new",
        "old_fails": "ran only in the new version", "changed_inputs": "with repointed inputs",
    }  # fmt: skip
    parts = [f"{n} {words.get(status, status)}" for status, n in sorted(counts.items())]
    tf2 = any(o.tf2 for o in report.signatures)
    return "verified against the source: " + ", ".join(parts) + ("; tf.saved_model.load agrees" if tf2 else "")
