"""`smsurgery plan`: what each step would change in each model, the diff verdict, and `require`. Writes nothing.

Each model is planned on its own Draft (its newest version's protos, edited
in memory): the same code path `apply` publishes, so the plan is what apply
will do, not a guess.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InvalidOption, PathNotFound, SmsurgeryError
from smsurgery.core.integrity import require_intact
from smsurgery.core.model import MetaGraph, SavedModelFile, read
from smsurgery.core.user_files import EDITS_LIMIT, read_user_file
from smsurgery.edits.draft import Draft
from smsurgery.edits.validate import problems, validate
from smsurgery.inspect.diff import compare_models
from smsurgery.recipes.attachments import Attachment
from smsurgery.recipes.matching import mismatch
from smsurgery.recipes.recipe_file import VERDICTS, RecipeFile
from smsurgery.storage.url import is_remote

PLAN_SCHEMA = "smsurgery.plan/1"


@dataclass
class StepOutcome:
    number: int
    op: str
    status: str  # applied | skipped | refused
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.number, "op": self.op, "status": self.status, "details": self.details}


@dataclass
class ModelPlan:
    """One model base: what the recipe does to its newest version."""

    base: str
    version: int | None = None
    status: str = "unchanged"  # changes | unchanged | blocked (require) | error
    steps: list[StepOutcome] = field(default_factory=list)
    verdict: str = "unchanged"
    changes: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # what `check` finds in the result
    reason: str | None = None
    draft: Draft | None = None  # the in-memory result, when it changes anything
    attachments: list[Attachment] = field(default_factory=list)  # to run on it, in order

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base, "version": self.version, "status": self.status, "verdict": self.verdict,
            "reason": self.reason, "steps": [s.to_json() for s in self.steps], "changes": self.changes,
            "findings": self.findings,
        }  # fmt: skip


@dataclass
class PlanReport:
    recipe: str
    models: list[ModelPlan]
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 nothing to do, 1 changes planned, 3 a `require` would fail, 2 errors."""
        statuses = {m.status for m in self.models}
        return 2 if "error" in statuses else 3 if "blocked" in statuses else 1 if "changes" in statuses else 0

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PLAN_SCHEMA, "recipe": self.recipe, "exit_status": self.exit_status,
            "summary": {s: self.count(s) for s in ("changes", "unchanged", "blocked", "error")},
            "warnings": self.warnings, "models": [m.to_json() for m in self.models],
        }  # fmt: skip


def plan(recipe: RecipeFile, bases: Sequence[str | Path]) -> PlanReport:
    report = PlanReport(recipe.source, [plan_model(recipe, base) for base in bases])
    for number, step in enumerate(recipe.steps, 1):
        if step.match and not any(_applied(m, number) for m in report.models):
            report.warnings.append(f"{step.where(number)} ({step.edit.op}) matches no model")
    return report


def _applied(model: ModelPlan, number: int) -> bool:
    return any(s.number == number and s.status != "skipped" for s in model.steps)


def plan_model(recipe: RecipeFile, base: str | Path, *, detail: bool = True) -> ModelPlan:
    """Plan one base; every user error becomes the model's `error` status, so the others still plan.

    `detail=False` (apply) leaves out what only the plan report shows: the
    diff's change list, and `check`'s findings unless `[require] check` needs
    them. The verdict and every requirement are decided exactly as in plan.
    """
    result = ModelPlan(str(base))
    try:
        source = read(base)
        require_intact(source)
        result.version = source.ref.version
        draft = Draft(source, recipe.tags)
        for number, step in recipe.edits:
            result.steps.append(_plan_step(draft, step, number))
            if result.steps[-1].status == "refused":
                result.status, result.reason = "error", f"step {number}: {result.steps[-1].details[0]}"
                return result
        attached = _plan_attachments(recipe, draft, result) if recipe.attachments else []
        if result.status == "error" or (not draft.report.changes and not attached):
            return result
        result.attachments = [a for a, _ in attached]
        new_errors = 0
        if draft.report.changes:
            validate(draft.meta, problems(draft.source_meta.proto))
            edited = SavedModelFile(source.ref, draft.saved_model)
            diff = compare_models(source, edited, tags=draft.tags)
            result.verdict, result.draft = diff.verdict, draft
            if detail:
                result.changes = [c.to_json() for c in diff.changes]
            if detail or "check" in recipe.require:
                result.findings, new_errors = _check_findings(source, edited, draft.tags)
        result.verdict = max([result.verdict, *(v for _, v in attached)], key=VERDICTS.index)
        result.status, result.reason = "changes", _unmet(recipe, result, new_errors)
        if result.reason is not None:
            result.status = "blocked"
    except SmsurgeryError as error:
        result.status, result.reason = "error", str(error)
    return result


def _plan_attachments(recipe: RecipeFile, draft: Draft, result: ModelPlan) -> list[tuple[Attachment, str]]:
    """The attachment steps that would run, with their verdicts, each checked against the in-memory result.

    Every attachment is planned against the model as the in-memory steps
    left it (what TensorFlow would attach to is not built yet): an
    attachment cannot name a signature an earlier attachment adds.
    """
    edited = SavedModelFile(draft.source.ref, draft.saved_model) if draft.report.changes else draft.source
    tags = draft.lineage.tags
    meta = edited.meta_graph(tags)
    chosen: list[tuple[Attachment, str]] = []
    for number, step in recipe.attachments:
        attachment = step.edit
        assert isinstance(attachment, Attachment)
        why_not = mismatch(step.match, meta) or attachment.done(meta)
        if why_not is not None:
            result.steps.append(StepOutcome(number, attachment.op, "skipped", [why_not]))
            continue
        try:
            planned = attachment.plan(edited, tags)
        except SmsurgeryError as error:
            result.steps.append(StepOutcome(number, attachment.op, "refused", [str(error)]))
            result.status, result.reason = "error", f"step {number}: {error}"
            return []
        result.steps.append(StepOutcome(number, attachment.op, "applied", planned.details))
        chosen.append((planned.settled or attachment, planned.verdict))
    return chosen


def _check_findings(source: SavedModelFile, edited: SavedModelFile, tags: tuple[str, ...]) -> tuple[list, int]:
    """`check`'s TF-free findings on the result, and how many of its errors the source did not have.

    The fingerprint family is left out: a new version is written without
    fingerprint.pb, and the source's would read as stale for the edited protos.
    """
    from smsurgery.core.oplist import load as load_oplist
    from smsurgery.inspect.check import model_findings

    target = load_oplist(None)
    found = [f for f in model_findings(edited, tags, target) if not f.code.startswith("SM-FINGERPRINT")]
    before = {(f.code, f.subject) for f in model_findings(source, tags, target) if f.severity == "error"}
    new_errors = sum(f.severity == "error" and (f.code, f.subject) not in before for f in found)
    return [f.to_json() for f in found], new_errors


def _unmet(recipe: RecipeFile, result: ModelPlan, new_errors: int) -> str | None:
    """Why `[require]` does not hold for this model's result (None when it does)."""
    allowed = recipe.require.get("verdict")
    if allowed is not None and VERDICTS.index(result.verdict) > VERDICTS.index(allowed):
        return f"diff verdict {result.verdict}; the recipe allows {allowed}"
    level = recipe.require.get("check")
    errors = sum(f["severity"] == "error" for f in result.findings)
    if level == "clean" and result.findings:
        return f"check finds {', '.join(sorted({f['code'] for f in result.findings}))}; the recipe requires clean"
    if level == "no-errors" and errors:
        return f"check finds {errors} error(s); the recipe allows none"
    if level == "no-new-errors" and new_errors:
        return f"check finds {new_errors} error(s) the source did not have"
    return None


def _plan_step(draft: Draft, step: Any, number: int) -> StepOutcome:
    meta = MetaGraph(SavedModelFile(draft.source.ref, draft.saved_model), draft.meta)
    why_not = mismatch(step.match, meta)
    if why_not is not None:
        return StepOutcome(number, step.edit.op, "skipped", [why_not])
    before = len(draft.report.changes)
    try:
        draft.apply(step.edit)
    except SmsurgeryError as error:
        return StepOutcome(number, step.edit.op, "refused", [str(error)])
    details = [c.detail for c in draft.report.changes[before:]]
    return StepOutcome(number, step.edit.op, "applied" if details else "skipped", details or ["nothing to change"])


def expand_bases(items: Iterable[str], from_file: str | Path | None = None) -> list[str]:
    """Bases as given, globs expanded (sorted), plus one per line of `from_file`; duplicates dropped."""
    given = list(items)
    if from_file is not None:
        data = read_user_file(from_file, what="the list of bases", limit=EDITS_LIMIT, error=PathNotFound)
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise PathNotFound(f"the list of bases {from_file} is not UTF-8 text (byte {error.start})") from error
        given += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    bases: list[str] = []
    for item in given:
        pattern = any(c in item for c in "*?[")
        if pattern and is_remote(item):
            raise InvalidOption(
                f"{item}: patterns are not expanded in s3:// or gs:// URLs", hint="name each base, or use --from FILE"
            )
        matches = sorted(glob.glob(item)) if pattern else [item]
        if not matches:
            raise PathNotFound(f"no model base matches {item}")
        bases += [m for m in matches if m not in bases]
    if not bases:
        raise PathNotFound("no model bases given", hint="name them, use a glob, or --from FILE")
    return bases


def select_shard(bases: Sequence[str], shard: str | None) -> list[str]:
    """`I/N` (0 <= I < N): the bases whose path hashes to I mod N; stable as bases come and go."""
    if shard is None:
        return list(bases)
    index_text, sep, count_text = shard.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise InvalidOption(f"--shard {shard!r} is not I/N with 0 <= I < N", hint="e.g. --shard 0/4 ... --shard 3/4")
    return [b for b in bases if _bucket(b, count) == index]


def _bucket(base: str, count: int) -> int:
    key = str(Path(base).resolve()) if Path(base).exists() else base
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()[:8], "big") % count
