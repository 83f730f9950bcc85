"""`smsurgery apply`: plan each model again in a worker, publish what changes, report every outcome.

Workers re-plan from the files rather than receive a plan: a plan made
minutes ago may be stale, and re-planning is what makes apply idempotent
(a model already in the recipe's end state plans as "unchanged") and makes
an interrupted apply safe to run again. Each worker publishes through the
same atomic, verified path as every edit command.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InvalidOption, SmsurgeryError
from smsurgery.core.model import read
from smsurgery.edits.draft import publish
from smsurgery.publishing.atomic import clean_stale_staging, scratch_base
from smsurgery.publishing.new_version import target_base
from smsurgery.publishing.target import PublishTarget
from smsurgery.recipes.plan import ModelPlan, plan_model
from smsurgery.recipes.recipe_file import RecipeFile
from smsurgery.storage.mirror import cache_dir
from smsurgery.storage.url import is_remote

APPLY_SCHEMA = "smsurgery.apply/1"
OUTCOMES = ("published", "unchanged", "refused", "failed", "not run")
QUEUED_PER_WORKER = 4


@dataclass
class ModelOutcome:
    base: str
    status: str  # published | unchanged | refused (require or plan) | failed (publish) | not run
    version: int | None = None
    path: str | None = None
    verdict: str | None = None
    reason: str | None = None
    changes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ApplyReport:
    recipe: str
    models: list[ModelOutcome]

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.models)

    @property
    def exit_status(self) -> int:
        """0 all published or unchanged; 3 a `require` held a model back; 2 a model failed or was refused."""
        statuses = {m.status for m in self.models}
        if statuses & {"failed", "not run"} or any(m.status == "refused" and not _blocked(m) for m in self.models):
            return 2
        return 3 if statuses & {"refused"} else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": APPLY_SCHEMA, "recipe": self.recipe, "exit_status": self.exit_status,
            "summary": {s: self.count(s) for s in OUTCOMES}, "models": [m.to_json() for m in self.models],
        }  # fmt: skip


def _blocked(model: ModelOutcome) -> bool:
    return model.reason is not None and model.reason.startswith("require: ")


def apply_model(recipe: RecipeFile, base: str, target: PublishTarget) -> ModelOutcome:
    """Plan and publish one base; never raises a user error (it becomes the outcome).

    A killed apply's leftovers in the base (staging folders, a scratch base)
    are removed first, also when the model is already in its end state.
    """
    if Path(base).is_dir():
        clean_stale_staging(Path(base))
    planned = plan_model(recipe, base, detail=False)
    if planned.status == "unchanged":
        return ModelOutcome(base, "unchanged")
    if planned.status == "blocked":
        return ModelOutcome(base, "refused", verdict=planned.verdict, reason=f"require: {planned.reason}")
    if planned.status == "error" or (planned.draft is None and not planned.attachments):
        return ModelOutcome(base, "refused", reason=planned.reason)
    try:
        if planned.attachments:
            path, changes = publish_chain(planned, target)
            version = int(str(path).rstrip("/").rsplit("/", 1)[-1])
        else:
            assert planned.draft is not None
            result = publish(planned.draft, target)
            assert result.published is not None
            path, version, changes = result.published.path, result.published.version, result.report.changes
    except SmsurgeryError as error:
        return ModelOutcome(base, "failed", verdict=planned.verdict, reason=str(error))
    return ModelOutcome(
        base, "published", version=version, path=str(path), verdict=planned.verdict,
        changes=[c if isinstance(c, str) else c.detail for c in changes],
    )  # fmt: skip


@contextlib.contextmanager
def _scratch(base: Path | str) -> Iterator[Path]:
    """Where a chain's intermediate versions go: inside a local base; a local cache folder for a bucket.

    A bucket's intermediate versions are never uploaded: only the last
    publish of the chain goes into the store, by the object-store protocol.
    """
    if is_remote(str(base)):
        yield cache_dir("scratch")
    else:
        with scratch_base(Path(base)) as scratch:
            yield scratch


def publish_chain(planned: ModelPlan, target: PublishTarget) -> tuple[Path | str, list[str]]:
    """The in-memory result, then each attachment on it; only the last publish lands in the model's base.

    The intermediate versions live in a scratch base inside the model's
    base (a local folder for a bucket), so the model's base gets exactly
    one new version, or none when any link of the chain fails (each publish
    verifies its own step).
    """
    source = planned.draft.source if planned.draft is not None else read(planned.base)
    base = target_base(source, None)
    tags = planned.draft.lineage.tags if planned.draft is not None else source.meta_graph(None).tags
    applied = [d for s in planned.steps if s.status == "applied" for d in s.details]
    with _scratch(base) as scratch:
        staged = replace(target, base=scratch, version=None)
        current = source.path
        if planned.draft is not None:
            result = publish(planned.draft, staged)
            assert result.published is not None
            current = result.published.path
        for attachment in planned.attachments[:-1]:
            current = attachment.run(current, tags, staged)
        final = planned.attachments[-1].run(current, tags, replace(target, base=base, version=None))
    return final, applied


def apply(
    recipe: RecipeFile,
    bases: Sequence[str | Path],
    *,
    jobs: int = 1,
    keep_going: bool = False,
    target: PublishTarget | None = None,
    on_done: Callable[[ModelOutcome], None] | None = None,
) -> ApplyReport:
    """Apply `recipe` to every base, `jobs` at a time; without `keep_going`, stop starting new ones after a failure."""
    if jobs < 1:
        raise InvalidOption(f"--jobs must be at least 1, not {jobs}")
    chosen = target or PublishTarget()
    if chosen.base is not None or chosen.version is not None:
        raise InvalidOption(
            "apply publishes into each model's own base as its next version: --out and --version do not apply"
        )
    names = [str(b) for b in bases]
    outcomes: dict[str, ModelOutcome] = {}

    def done(outcome: ModelOutcome) -> bool:
        outcomes[outcome.base] = outcome
        if on_done is not None:
            on_done(outcome)
        return keep_going or outcome.status in ("published", "unchanged") or _blocked(outcome)

    if jobs == 1:
        for base in names:
            if not done(apply_model(recipe, base, chosen)):
                break
    else:
        _apply_parallel(recipe, names, chosen, jobs, done)
    models = [outcomes.get(b) or ModelOutcome(b, "not run", reason="an earlier model failed") for b in names]
    return ApplyReport(recipe.source, models)


def _apply_parallel(
    recipe: RecipeFile, names: list[str], target: PublishTarget, jobs: int, done: Callable[[ModelOutcome], bool]
) -> None:
    # fork is fast and safe while this process has not imported TensorFlow (the CLI never does);
    # a forked child of a process whose TensorFlow threads run can deadlock, so a Python caller that
    # imported it gets forkserver. A few models are queued per worker so that none waits on a round
    # trip; after a failure the queued ones are cancelled.
    context = multiprocessing.get_context("forkserver" if "tensorflow" in sys.modules else "fork")
    pending = list(reversed(names))
    running: set[Future[ModelOutcome]] = set()
    stop = False
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        while (pending and not stop) or running:
            while pending and not stop and len(running) < jobs * QUEUED_PER_WORKER:
                running.add(pool.submit(apply_model, recipe, pending.pop(), target))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                if not future.cancelled():
                    stop = not done(future.result()) or stop
            if stop:
                for future in running:
                    future.cancel()
