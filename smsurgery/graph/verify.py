"""Run two versions side by side the way TensorFlow Serving does, and compare their outputs.

`verify_edit` checks an edit before it is published: every signature that
still exists runs in the old and the new version, on the same generated
inputs, through the TF1 session loader, and every output the edit did not
change must come out identical. Stateful models (a counter) change with
each run, so both versions are loaded fresh and run the same signatures in
the same order. For TF2 exports the new version is also loaded with
`tf.saved_model.load`, which must list the same keys and aliases and
compute the same values by name (the sort-order trap of renames shows up
here and nowhere else).

`compare` is the same machinery for any two models, with tolerances.
Signatures whose inputs cannot be generated (composite tensors, serialized
tf.Example strings) are not failures when both sides fail alike.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core.errors import InvalidRequest, LoaderFailed, SignatureNotFound, SmsurgeryError, listing
from smsurgery.core.model import SignatureView, read
from smsurgery.graph.session import first_line, load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import Tolerance, compare_arrays, tolerance
from smsurgery.publishing.verify_scope import untouched_signatures
from smsurgery.serving.samples import numpy_dtype, sample_inputs

SAMPLE_BATCH = 2
SAMPLE_SEED = 0


@dataclass(frozen=True)
class SignaturePair:
    """Signature `new` of B (or the new version) stands for `old` of A; None: nothing to compare with."""

    old: str | None
    new: str
    inputs: Mapping[str, str | None]  # new alias -> old alias (None: new or repointed input)
    outputs: Mapping[str, str | None]  # new alias -> old alias (None: new or repointed output)


@dataclass(frozen=True)
class Failure:
    kind: str  # the TensorFlow error class, e.g. InvalidArgumentError
    message: str


@dataclass
class OutputDiff:
    alias: str
    old_alias: str | None
    status: str  # identical | within | differs | new | changed | dtype_mismatch
    max_abs: float | None = None
    max_rel: float | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias, "old_alias": self.old_alias, "status": self.status,
            "max_abs_diff": self.max_abs, "max_rel_diff": self.max_rel, "detail": self.detail,
        }  # fmt: skip


@dataclass
class SignatureOutcome:
    key: str
    old_key: str | None
    status: str  # compared | both_fail | new_fails | old_fails | new_only | changed_inputs | untouched
    outputs: list[OutputDiff] = field(default_factory=list)
    error: str | None = None
    tf2: str | None = None  # agrees | problem text; None when not checked

    @property
    def ok(self) -> bool:
        bad_output = any(o.status in ("differs", "dtype_mismatch") for o in self.outputs)
        return self.status != "new_fails" and not bad_output and self.tf2 in (None, "agrees", "both fail alike")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "old_key": self.old_key, "status": self.status, "ok": self.ok,
            "error": self.error, "tf2": self.tf2, "outputs": [o.to_json() for o in self.outputs],
        }  # fmt: skip


@dataclass
class ComparisonReport:
    a: str
    b: str
    rtol: float
    atol: float
    signatures: list[SignatureOutcome]
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # problems beyond single signatures

    @property
    def ok(self) -> bool:
        return not self.errors and all(s.ok for s in self.signatures)

    def failures(self) -> list[str]:
        lines = list(self.errors)
        for outcome in self.signatures:
            if outcome.status == "new_fails":
                lines.append(f"'{outcome.key}' fails in {self.b}: {outcome.error}")
            lines.extend(
                f"output '{o.alias}' of '{outcome.key}' {o.status}: {o.detail}"
                for o in outcome.outputs
                if o.status in ("differs", "dtype_mismatch")
            )
            if outcome.tf2 not in (None, "agrees", "both fail alike"):
                lines.append(f"'{outcome.key}' under tf.saved_model.load: {outcome.tf2}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "smsurgery.compare/1", "a": self.a, "b": self.b, "rtol": self.rtol, "atol": self.atol,
            "ok": self.ok, "signatures": [s.to_json() for s in self.signatures], "notes": list(self.notes),
            "errors": list(self.errors),
        }  # fmt: skip


Results = list["dict[str, np.ndarray] | Failure"]


_NOISE = ("Graph execution error", "Detected at node", "Node:", "[[", "defined at")


def _failure(error: BaseException) -> Failure:
    """The TensorFlow error class and the line of its message that says what went wrong."""
    cause = error.__cause__ or error
    text = str(getattr(cause, "message", None) or cause)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(_NOISE)]
    message = f"{type(cause).__name__}: {lines[-1]}" if lines else first_line(error)
    return Failure(kind=type(cause).__name__, message=message)


def _run_plan(path: Path, tags: tuple[str, ...], plan: list[tuple[str, dict[str, np.ndarray]]]) -> Results | Failure:
    """Run signatures in order in one fresh TF1 session; a load failure is one Failure for all."""
    try:
        with load_session(path, tags) as session:
            results: Results = []
            for key, feeds in plan:
                try:
                    results.append(session.run(key, feeds))
                except SmsurgeryError as error:
                    results.append(_failure(error))
            return results
    except SmsurgeryError as error:
        return _failure(error)


def _dtype_problem(view: SignatureView, alias: str, value: np.ndarray) -> str | None:
    """The declared dtype of an output against what the graph actually returned."""
    try:
        expected = np.dtype(numpy_dtype(view.output(alias).dtype))
    except (InvalidRequest, SmsurgeryError):
        return None
    actual = np.asarray(value).dtype
    if expected.kind == "O":
        return None if actual.kind in "OSU" else f"declared DT_STRING, got {actual}"
    return None if actual == expected else f"declared {view.output(alias).dtype}, got {actual}"


def _output_diffs(
    pair: SignaturePair, old: Any, new: dict, view: SignatureView, rtol: float, atol: float, compare: bool
) -> list[OutputDiff]:
    diffs = []
    for alias in sorted(new):
        origin = pair.outputs.get(alias)
        problem = _dtype_problem(view, alias, new[alias])
        if problem:
            diffs.append(OutputDiff(alias, origin, "dtype_mismatch", detail=problem))
        elif not compare or origin is None:
            diffs.append(OutputDiff(alias, origin, "changed" if pair.old else "new"))
        else:
            result = compare_arrays(old[origin], new[alias], Tolerance(rtol, atol))
            diffs.append(OutputDiff(alias, origin, result.status, result.max_abs, result.max_rel, result.detail))
    return diffs


def _compare_pair(
    pair: SignaturePair, old: Any, new: Any, view: SignatureView, rtol: float, atol: float
) -> SignatureOutcome:
    outcome = SignatureOutcome(key=pair.new, old_key=pair.old, status="compared")
    if pair.old is None:
        outcome.status = "new_only"
        if isinstance(new, Failure):
            outcome.error = new.message  # a new signature may need inputs we cannot make up
        else:
            outcome.outputs = _output_diffs(pair, None, new, view, rtol, atol, compare=False)
        return outcome
    if isinstance(new, Failure):
        same = isinstance(old, Failure) and old.kind == new.kind
        outcome.status = "both_fail" if same else "new_fails"
        outcome.error = new.message
        return outcome
    if any(origin is None for origin in pair.inputs.values()):
        outcome.status = "changed_inputs"
    elif isinstance(old, Failure):
        outcome.status, outcome.error = "old_fails", old.message
    outcome.outputs = _output_diffs(pair, old, new, view, rtol, atol, compare=outcome.status == "compared")
    return outcome


@dataclass
class _Runs:
    report: ComparisonReport
    plan_b: list[tuple[str, dict[str, np.ndarray]]]
    results_a: Results | Failure  # a Failure here: the version did not load at all
    results_b: Results | Failure


def _at(results: Results | Failure, position: int) -> Any:
    return results if isinstance(results, Failure) else results[position]


def _run_comparison(
    a: Path, b: Path, tags: tuple[str, ...], pairs: list[SignaturePair], *, rtol: float, atol: float,
    tags_b: tuple[str, ...] | None = None,
) -> _Runs:  # fmt: skip
    """Run paired signatures in A and in B (same order, same inputs); then B's unpaired ones.

    `tags_b`: B's meta graph has another tag set (a retagged version).
    """
    tags_b = tags if tags_b is None else tags_b
    view_a, view_b = read(a).meta_graph(tags), read(b).meta_graph(tags_b)
    ordered = [p for p in pairs if p.old is not None] + [p for p in pairs if p.old is None]
    plan_a, plan_b = [], []
    for pair in ordered:
        if pair.old is None:
            plan_b.append((pair.new, sample_inputs(view_b.signature(pair.new), batch=SAMPLE_BATCH, seed=SAMPLE_SEED)))
            continue
        feeds = sample_inputs(view_a.signature(pair.old), batch=SAMPLE_BATCH, seed=SAMPLE_SEED)
        plan_a.append((pair.old, feeds))
        plan_b.append((pair.new, {new: feeds[old] for new, old in pair.inputs.items() if old in feeds}))
    # One version in memory at a time: A is released (gc: TF graphs hold reference cycles) before B loads,
    # and A is not loaded at all when nothing of it is compared.
    results_a: Results | Failure = _run_plan(a, tags, plan_a) if plan_a else []
    gc.collect()
    results_b = _run_plan(b, tags_b, plan_b)
    gc.collect()
    report = ComparisonReport(a=str(a), b=str(b), rtol=rtol, atol=atol, signatures=[])
    for position, pair in enumerate(ordered):
        old = _at(results_a, position) if pair.old is not None else None
        outcome = _compare_pair(pair, old, _at(results_b, position), view_b.signature(pair.new), rtol, atol)
        if outcome.status == "new_only" and outcome.error:
            report.notes.append(f"new signature '{pair.new}' did not run on generated inputs: {outcome.error}")
        report.signatures.append(outcome)
    for side, results in (("A", results_a), ("B", results_b)):
        if isinstance(results, Failure):
            report.notes.append(f"the TF1 loader cannot load {side}: {results.message}")
    return _Runs(report, plan_b, results_a, results_b)


def _check_tf2_view(runs: _Runs, old: Path, new: Path, tags: tuple[str, ...], tags_new: tuple[str, ...]) -> None:
    """Load B with tf.saved_model.load: same keys and aliases, and the same values as its TF1 run."""
    view = read(new).meta_graph(tags_new)
    report, plan, results = runs.report, runs.plan_b, runs.results_b
    try:
        loaded = load_tf2(new, tags_new)
    except SmsurgeryError as error:
        verdict = "both fail alike" if _tf2_fails(old, tags) else f"does not load: {first_line(error)}"
        for outcome in report.signatures:
            outcome.tf2 = verdict
        return
    tf2_keys = sorted(k for k in loaded.signatures if k != "__saved_model_init_op")
    if tf2_keys != view.signature_keys():
        report.errors.append(f"tf.saved_model.load lists {tf2_keys}, signature_def {view.signature_keys()}")
    for position, outcome in enumerate(report.signatures):
        if outcome.status == "untouched":  # listed with the same aliases; its computation is the source's
            outcome.tf2 = _tf2_listing(loaded, view.signature(outcome.key)) or "agrees"
            continue
        outcome.tf2 = _tf2_signature(loaded, view.signature(outcome.key), plan[position][1], _at(results, position))


def _tf2_fails(path: Path, tags: tuple[str, ...]) -> bool:
    try:
        load_tf2(path, tags)
    except SmsurgeryError:
        return True
    return False


def _tf2_listing(loaded: Any, view: SignatureView) -> str | None:
    """What is wrong with how tf.saved_model.load lists signature `view` (None: same key and aliases)."""
    if view.key not in loaded.signatures:
        return f"no signature '{view.key}' (it has: {listing(sorted(loaded.signatures))})"
    function = loaded.signatures[view.key]
    inputs = sorted(function.structured_input_signature[1])
    outputs = sorted(function.structured_outputs)
    if inputs != [t.alias for t in view.inputs] or outputs != [t.alias for t in view.outputs]:
        return f"inputs {inputs} and outputs {outputs}, but signature_def has other aliases"
    return None


def _tf2_signature(loaded: Any, view: SignatureView, feeds: dict[str, np.ndarray], tf1: Any) -> str:
    problem = _tf2_listing(loaded, view)
    if problem is not None:
        return problem
    outputs = sorted(loaded.signatures[view.key].structured_outputs)
    try:
        values = run_tf2(loaded, view.key, feeds)
    except SmsurgeryError as error:
        return "both fail alike" if isinstance(tf1, Failure) else f"fails: {first_line(error)}"
    if isinstance(tf1, Failure):
        return "agrees"  # runs under TF2 only: nothing to compare
    for alias in outputs:
        result = compare_arrays(tf1[alias], values[alias], Tolerance(rtol=1e-6, atol=1e-6))
        if not result:
            return f"output '{alias}' differs from the TF1 loader's ({result.detail})"
    return "agrees"


def compare(
    a: str | Path,
    b: str | Path,
    *,
    signature: str | None = None,
    tags: tuple[str, ...] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> ComparisonReport:
    """Run the signatures A and B share on the same inputs; report max abs/rel difference per output."""
    model_a, model_b = read(a), read(b)
    meta_a, meta_b = model_a.meta_graph(tags), model_b.meta_graph(tags)
    keys_a, keys_b = meta_a.signature_keys(), meta_b.signature_keys()
    if signature is not None:
        for meta, keys in ((meta_a, keys_a), (meta_b, keys_b)):
            if signature not in keys:
                hint = f"it has: {listing(keys)}"
                raise SignatureNotFound(f"no signature '{signature}' in {meta.model.ref}", hint=hint)
        keys = [signature]
    else:
        keys = [k for k in keys_a if k in keys_b]
    pairs = []
    for key in keys:
        sig_a, sig_b = meta_a.signature(key), meta_b.signature(key)
        inputs_a = {t.alias for t in sig_a.inputs}
        pairs.append(SignaturePair(
            old=key, new=key,
            inputs={t.alias: (t.alias if t.alias in inputs_a else None) for t in sig_b.inputs},
            outputs={t.alias: t.alias for t in sig_b.outputs if t.alias in {o.alias for o in sig_a.outputs}},
        ))  # fmt: skip
    tol = tolerance(rtol, atol)
    runs = _run_comparison(model_a.path, model_b.path, meta_a.tags, pairs, rtol=tol.rtol, atol=tol.atol)
    for ref, results in ((model_a.ref, runs.results_a), (model_b.ref, runs.results_b)):
        if isinstance(results, Failure) and pairs:
            raise LoaderFailed(f"cannot compare: {ref} does not load with the TF1 loader ({results.message})")
    report = runs.report
    report.a, report.b = str(model_a.ref), str(model_b.ref)
    only_a, only_b = sorted(set(keys_a) - set(keys_b)), sorted(set(keys_b) - set(keys_a))
    if signature is None and (only_a or only_b):
        report.notes.append(f"not compared: only in A: {listing(only_a)}; only in B: {listing(only_b)}")
    return report


def verify_edit(
    old: Path,
    new: Path,
    tags: tuple[str, ...],
    pairs: list[SignaturePair],
    *,
    tf2: bool,
    rtol: float | None = None,
    atol: float | None = None,
    new_tags: tuple[str, ...] | None = None,
) -> ComparisonReport:
    """Old against new: unchanged outputs must match within the tolerance (exactly when 0/0 is given).

    Signatures the edit provably did not touch (`verify_scope`) are not run;
    the new version is still loaded by each loader, one version at a time
    (the caller checks first that one load fits: `memoryguard`).
    `new_tags`: the meta graph to check in the new version, when an edit retagged it.
    """
    tol = tolerance(rtol, atol)
    new_tags = tags if new_tags is None else new_tags
    untouched = untouched_signatures(old, new, tags, pairs) if new_tags == tags else set()
    compared = [p for p in pairs if p.new not in untouched]
    runs = _run_comparison(old, new, tags, compared, rtol=tol.rtol, atol=tol.atol, tags_b=new_tags)
    for pair in pairs:
        if pair.new in untouched:
            runs.report.signatures.append(SignatureOutcome(key=pair.new, old_key=pair.old, status="untouched"))
    if tf2:
        _check_tf2_view(runs, old, new, tags, new_tags)
    if untouched:
        runs.report.notes.append(
            f"not run: {listing(sorted(untouched))} (graph, signature and object-graph binding byte-identical "
            "to the source; only keys changed)"
        )
    return runs.report
