"""Attach a preprocessor in front of an input, or a postprocessor after the outputs, of one signature.

Every attachment (image decoding, tf.Example parsing, top-k labels) is a
new signature built from an existing one; what differs is only the piece
in front or behind. The rest is shared and lives here:

- two routes, chosen by the kind of export:
  `session` (TF1 exports): the model goes into a `tf.compat.v1` session
  (`editable`), the preprocessor is built in its graph, `rewire.front_signature`
  copies what depends on the replaced input and feeds it the new tensor, the
  postprocessor is built on the copy's outputs, and `SavedModelBuilder`
  writes the result. `function` (TF2 and Keras exports):
  `tf.saved_model.load`, a new `tf.function` that runs the preprocessor,
  calls the original signature function and runs the postprocessor, then
  `tf.saved_model.save` with every original signature plus the new one; the
  result stays a TF2 export (object graph, restored attributes such as a
  Keras export's `serve`), which the session route would drop;
- the check before publishing (`StagingCheck`), on the complete staging
  folder: the new signature under both loaders must equal the original
  signature with the same steps done eagerly (preprocessor, original,
  postprocessor), and every original signature must still give the
  source's outputs, by the one comparison (`smsurgery.publishing.comparison`);
- a record in the model of which new inputs carry image files
  (`smsurgery.attach.inputs_record`), so request, warmup and sample inputs send
  images without guessing from names;
- where the new signature takes any batch, its outputs declare an unknown
  batch dimension (a fixed-batch model fed a batch of images returns that
  many rows; declaring `(1, 4)` then would be false).

Pre- and postprocessors place their own string and decode ops on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from smsurgery.attach.inputs_record import image_inputs, merge_record
from smsurgery.core.errors import LoaderFailed, VerificationFailed
from smsurgery.core.model import MetaGraph, SavedModelFile, SignatureView
from smsurgery.graph.export import publish_editable, publish_saved, rewrite_staged
from smsurgery.graph.rewire import front_signature
from smsurgery.graph.session import first_line, import_tf, load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import OutputsComparison, Tolerance, compare_outputs, tolerance
from smsurgery.publishing.new_version import PublishedVersion
from smsurgery.publishing.target import PublishTarget
from smsurgery.serving.samples import sample_inputs


class Preprocessor(Protocol):
    """Builds tensors for original inputs from new inputs (graph, tf.function or eager)."""

    replaces: tuple[str, ...]  # aliases of the original inputs it produces (the call returns them by alias)
    new_inputs: Mapping[str, tuple[str, tuple[int | None, ...]]]  # alias -> (tf dtype name, shape)
    image_inputs: tuple[str, ...]  # which of the new inputs take image files (recorded in the model)

    def __call__(self, tf: Any, inputs: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def sample(self, tf: Any) -> dict[str, np.ndarray]:
        """Feeds for the new inputs that the check runs (batch 1)."""
        ...


class Postprocessor(Protocol):
    """Builds the new signature's outputs from the original's (graph, tf.function or eager)."""

    def __call__(self, tf: Any, outputs: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AttachPlan:
    """A checked attachment: which signature, what goes in front and behind, where it is published."""

    model: SavedModelFile
    meta: MetaGraph
    signature: SignatureView
    target: str  # key of the new signature
    keep_original_as: str | None  # where the original moves when `target` is its own key
    replace: bool
    base: Path | str  # a URL string for a remote base
    route: str  # session | function
    pre: Preprocessor | None = None
    post: Postprocessor | None = None
    any_batch: bool = False  # the new signature takes any batch: declare outputs' batch dim unknown
    drop_extra: tuple[str, ...] = ()  # assets.extra files not carried over
    method_name: str | None = None  # of the new signature; None: the original's (session) or predict (function)
    extra_assets: tuple[tuple[str, bytes], ...] = ()  # files written to the new version's assets/

    @property
    def source(self) -> Path:
        return self.model.path

    @property
    def tags(self) -> tuple[str, ...]:
        return self.meta.tags

    @property
    def kept_inputs(self) -> list[str]:
        replaced = self.pre.replaces if self.pre is not None else ()
        return [t.alias for t in self.signature.inputs if t.alias not in replaced]

    def new_signature_keys(self) -> list[str]:
        keys = set(self.meta.signature_keys()) | {self.target}
        if self.keep_original_as:
            keys.add(self.keep_original_as)
        return sorted(keys)


def _signature_map(plan: AttachPlan, originals: dict[str, Any], new: Any) -> dict[str, Any]:
    """Every original signature, plus the new one at `plan.target` (and the original moved if asked)."""
    signatures = dict(originals)
    if plan.keep_original_as:
        signatures[plan.keep_original_as] = originals[plan.signature.key]
    signatures[plan.target] = new
    return signatures


def _placeholder(tf: Any, alias: str, dtype: str, shape: tuple[int | None, ...]) -> Any:
    if dtype == "string":
        with tf.device("/CPU:0"):
            return tf.compat.v1.placeholder(tf.string, list(shape), name=alias)
    return tf.compat.v1.placeholder(tf.as_dtype(dtype), list(shape), name=alias)


def _unknown_batch(info: Any) -> None:
    if not info.tensor_shape.unknown_rank and info.tensor_shape.dim:
        info.tensor_shape.dim[0].size = -1


def _session_signature(tf: Any, graph: Any, original: Any, plan: AttachPlan) -> Any:
    """The new SignatureDef, built in `graph` (the model's own, in a session)."""
    utils = tf.compat.v1.saved_model.utils
    pre = plan.pre
    new_inputs = {a: _placeholder(tf, a, d, s) for a, d, s in _specs(pre)} if pre else {}
    replaced = dict(pre(tf, new_inputs)) if pre else {}
    new, _ = front_signature(graph, original, replaced=replaced, new_inputs=new_inputs, scope=plan.target)
    if plan.post is not None:
        tensors = {alias: graph.get_tensor_by_name(info.name) for alias, info in new.outputs.items()}
        outputs = plan.post(tf, tensors)
        new.ClearField("outputs")
        for alias, tensor in outputs.items():
            new.outputs[alias].CopyFrom(utils.build_tensor_info(tensor))
    if plan.any_batch:
        for info in new.outputs.values():
            _unknown_batch(info)
    return new


def _specs(pre: Preprocessor) -> list[tuple[str, str, tuple[int | None, ...]]]:
    return [(alias, dtype, shape) for alias, (dtype, shape) in pre.new_inputs.items()]


def session_route(plan: AttachPlan, *, new_version: int | None, check: Any) -> PublishedVersion:
    """TF1 exports: the attachment and a copy of what depends on the replaced input, in the model's graph."""
    from smsurgery.graph.editable import open_editable

    tf = import_tf()
    with open_editable(plan.model, plan.tags) as editable:
        graph = editable.graph
        with graph.as_default():
            new = _session_signature(tf, graph, editable.signature_def(plan.signature.key), plan)
        signatures = _signature_map(plan, editable.signature_defs(), new)
        return publish_editable(
            editable, plan.base, signatures, version=new_version, carry_skip=plan.drop_extra, before_publish=check
        )


def _unbatched(tf: Any, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs with the batch dimension left unknown in their static shape (values untouched)."""
    loosened = {}
    for alias, tensor in outputs.items():
        if tensor.shape.rank:
            tensor = tf.compat.v1.placeholder_with_default(tensor, [None, *tensor.shape[1:]])
        loosened[alias] = tensor
    return loosened


def function_route(plan: AttachPlan, *, new_version: int | None, check: Any) -> PublishedVersion:
    """TF2 exports: a tf.function that runs the attachment around the original signature function."""
    tf = import_tf()
    try:
        loaded = load_tf2(plan.source, plan.tags)
    except LoaderFailed as error:
        raise LoaderFailed(str(error), hint="--route session edits the graph in a TF1 session instead") from error
    originals = {key: loaded.signatures[key] for key in loaded.signatures}
    function = originals[plan.signature.key]
    _, specs = function.structured_input_signature
    pre, post = plan.pre, plan.post

    def attached(**inputs: Any) -> Any:
        if pre is not None:
            new = {alias: inputs.pop(alias) for alias in pre.new_inputs}
            inputs.update(pre(tf, new))
        outputs = function(**inputs)
        outputs = post(tf, outputs) if post is not None else outputs
        return _unbatched(tf, outputs) if plan.any_batch else outputs

    arguments = {a: tf.TensorSpec(s.shape, s.dtype, name=a) for a, s in specs.items() if a in plan.kept_inputs}
    for alias, dtype, shape in _specs(pre) if pre else []:
        arguments[alias] = tf.TensorSpec(list(shape), tf.as_dtype(dtype), name=alias)
    # autograph=False: attachments use tf.cond explicitly; converting them costs ~1.5 s and adds nothing.
    new = tf.function(attached, autograph=False).get_concrete_function(**arguments)
    signatures = _signature_map(plan, originals, new)
    return publish_saved(
        loaded,
        plan.base,
        signatures=signatures,
        version=new_version,
        carry_from=plan.source,
        carry_skip=plan.drop_extra,
        before_publish=check,
    )


def attach(plan: AttachPlan, *, new_version: int | None, check: StagingCheck | None) -> PublishedVersion:
    """Build, record, check and publish `plan` by its route."""
    route = session_route if plan.route == "session" else function_route
    return route(plan, new_version=new_version, check=Finish(plan, check))


@dataclass(frozen=True)
class AttachResult:
    """The published version of an attachment and what its check saw (None: not verified)."""

    published: PublishedVersion
    verification: dict[str, Any] | None
    seconds: float

    def report_fields(self, plan: AttachPlan) -> dict[str, Any]:
        """The fields every attachment's `--json` report shares."""
        return {
            "source": str(plan.model.ref),
            "base": str(self.published.base),
            "version": self.published.version,
            "path": str(self.published.path),
            "route": plan.route,
            "signature": plan.signature.key,
            "target": plan.target,
            "signatures": plan.new_signature_keys(),
            "verification": self.verification,
            "seconds": self.seconds,
        }


def publish_attachment(plan: AttachPlan, target: PublishTarget, started: float) -> AttachResult:
    """Publish `plan` as `target` says: its version number, verified (within its tolerance) unless told not to.

    `target.base` was already used when the plan was made (the plan refuses
    a bad `--out` before TensorFlow starts); `started` is when the command
    began, so the report's seconds include the planning.
    """
    check = StagingCheck(plan, tolerance(target.rtol, target.atol)) if target.verify else None
    published = attach(plan, new_version=target.version, check=check)
    summary = check.summary if check is not None else None
    return AttachResult(published, summary, round(time.perf_counter() - started, 3))


# --------------------------------------------------------------------------
# The steps before publishing: the record of image inputs, the check
# --------------------------------------------------------------------------


@dataclass
class Finish:
    """Runs on the staging folder: write the record of image inputs, then the check (if any)."""

    plan: AttachPlan
    check: StagingCheck | None

    def __call__(self, staging: Path) -> None:
        plan = self.plan
        images = list(plan.pre.image_inputs) if plan.pre is not None else []
        moved = (plan.signature.key, plan.keep_original_as) if plan.keep_original_as else None
        merge_record(staging, plan.source, plan.target, images, moved)
        for name, data in plan.extra_assets:
            (staging / "assets").mkdir(exist_ok=True)
            (staging / "assets" / name).write_bytes(data)
        if plan.method_name is not None:
            set_method_name(staging, plan.tags, plan.target, plan.method_name)
        if self.check is not None:
            self.check(staging)


def set_method_name(staging: Path, tags: tuple[str, ...], key: str, method_name: str) -> None:
    """Set a signature's method name in the staged saved_model.pb (tf.saved_model.save writes only predict)."""

    def change(saved_model: Any) -> None:
        for meta in saved_model.meta_graphs:
            if set(meta.meta_info_def.tags) == set(tags) and key in meta.signature_def:
                meta.signature_def[key].method_name = method_name

    rewrite_staged(staging, change)


def _run_samples(session: Any, key: str, view: SignatureView, images: frozenset[str]) -> dict[str, Any] | str:
    """Outputs of signature `key` (inputs as in `view`) on sample inputs, or why it could not run on them."""
    if any(t.name is None for t in view.inputs):
        return "skipped: composite inputs"
    try:
        return session.run(key, sample_inputs(view, batch=2, images=images))
    except LoaderFailed as error:
        return f"skipped: does not run on sample inputs ({first_line(error.__cause__ or error)})"


def _eager(tf: Any, function: Any, values: Mapping[str, Any]) -> Any:
    return function(tf, {alias: tf.constant(value) for alias, value in values.items()})


@dataclass
class StagingCheck:
    """Callable on a staging folder; raises `VerificationFailed`; records what it saw in `summary`."""

    plan: AttachPlan
    tolerance: Tolerance = field(default_factory=Tolerance)
    summary: dict[str, Any] = field(default_factory=dict)

    def _reference(self, old: Any, new_feeds: dict[str, Any]) -> dict[str, Any]:
        """The same steps done eagerly: preprocessor, original signature in the source, postprocessor."""
        tf, plan = import_tf(), self.plan
        feeds = dict(new_feeds)
        if plan.pre is not None:
            new = {alias: feeds.pop(alias) for alias in plan.pre.new_inputs}
            feeds.update({alias: np.asarray(value) for alias, value in _eager(tf, plan.pre, new).items()})
        outputs = old.run(plan.signature.key, feeds)
        if plan.post is not None:
            outputs = {alias: np.asarray(value) for alias, value in _eager(tf, plan.post, outputs).items()}
        return outputs

    def __call__(self, staging: Path) -> None:
        tf, plan = import_tf(), self.plan
        samples = sample_inputs(plan.signature, batch=1)
        new_feeds = {k: v for k, v in samples.items() if k in plan.kept_inputs}
        if plan.pre is not None:
            new_feeds.update(plan.pre.sample(tf))
        old_results: dict[str, Any] = {}
        with load_session(plan.source, plan.tags) as old:
            reference = self._reference(old, new_feeds)
            for key in old.signature_keys():
                old_results[key] = _run_samples(old, key, plan.meta.signature(key), image_inputs(plan.source, key))
        with load_session(staging, plan.tags) as new:
            differences = {"tf1": compare_outputs(reference, new.run(plan.target, new_feeds), self.tolerance)}
            unchanged = self._compare_originals(new, old_results)
        loaded = load_tf2(staging, plan.tags)
        differences["tf2"] = compare_outputs(reference, run_tf2(loaded, plan.target, new_feeds), self.tolerance)
        self.summary = {
            "new_signature_max_abs_diff": {loader: result.max_abs for loader, result in differences.items()},
            "original_signatures": unchanged,
            **self.tolerance.to_json(),
        }
        bad: dict[str, OutputsComparison] = {loader: result for loader, result in differences.items() if not result}
        if bad:
            raise VerificationFailed(
                f"signature '{plan.target}' of the new version differs from '{plan.signature.key}' with the same "
                f"steps done eagerly under {', '.join(sorted(bad))}: {'; '.join(next(iter(bad.values())).failures())}; "
                "nothing was published"
            )

    def _compare_originals(self, new: Any, old_results: dict[str, Any]) -> dict[str, str]:
        plan, unchanged = self.plan, {}
        for key, expected in old_results.items():
            new_key = plan.keep_original_as if key == plan.signature.key and plan.keep_original_as else key
            if key == plan.signature.key and plan.replace:
                continue
            if isinstance(expected, str):
                unchanged[new_key] = expected
                continue
            got = _run_samples(new, new_key, plan.meta.signature(key), image_inputs(plan.source, key))
            if isinstance(got, str):
                raise VerificationFailed(f"signature '{new_key}' of the new version {got}; nothing was published")
            result = compare_outputs(expected, got, self.tolerance)
            if not result:
                raise VerificationFailed(
                    f"signature '{new_key}' of the new version does not give the outputs '{key}' gave "
                    f"({'; '.join(result.failures())}); nothing was published"
                )
            unchanged[new_key] = "identical" if result.max_abs == 0 else f"max abs diff {result.max_abs:.3g}"
        return unchanged
