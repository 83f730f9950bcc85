"""The two ways of attaching the decoder, and the check that runs before publishing.

See `graph.image` for why each kind of export takes its route. The check
(`staging_check`) runs on the complete staging folder, before it is renamed
into place: the new signature on one generated JPEG under both loaders must
equal the original signature fed with the same JPEG decoded eagerly, and
every original signature must give the same outputs as the source version
on sample inputs. If it fails, nothing is published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.comparison import OutputsComparison, Tolerance, compare_outputs
from smsurgery.errors import LoaderFailed, VerificationFailed
from smsurgery.graph.export import publish_editable, publish_saved
from smsurgery.graph.image import decode_images, preprocess_one
from smsurgery.graph.image_plan import ImagePlan
from smsurgery.graph.rewire import front_signature
from smsurgery.graph.session import first_line, import_tf, load_session, load_tf2, run_tf2
from smsurgery.model import SignatureView
from smsurgery.reexport import PublishedVersion
from smsurgery.samples import sample_inputs


def _signature_map(plan: ImagePlan, originals: dict[str, Any], new: Any) -> dict[str, Any]:
    """Every original signature, plus the new one at `plan.target` (and the original moved if asked)."""
    signatures = dict(originals)
    if plan.keep_original_as:
        signatures[plan.keep_original_as] = originals[plan.signature.key]
    signatures[plan.target] = new
    return signatures


def session_route(plan: ImagePlan, *, new_version: int | None, check: Any) -> PublishedVersion:
    """TF1 exports: decoder + a copy of what depends on the image input, in the model's own graph."""
    from smsurgery.graph.editable import open_editable

    tf = import_tf()
    with open_editable(plan.model, plan.tags) as editable:
        graph = editable.graph
        original = editable.signature_def(plan.signature.key)
        with graph.as_default():
            with tf.device("/CPU:0"):
                strings = tf.compat.v1.placeholder(tf.string, [None], name=plan.new_alias)
            images = decode_images(tf, strings, plan.spec)
            new, _ = front_signature(
                graph,
                original,
                replaced={plan.image.alias: images},
                new_inputs={plan.new_alias: strings},
                scope=plan.target,
            )
        signatures = _signature_map(plan, editable.signature_defs(), new)
        return publish_editable(
            editable, plan.base, signatures, version=new_version, carry_skip=plan.drop_extra, before_publish=check
        )


def function_route(plan: ImagePlan, *, new_version: int | None, check: Any) -> PublishedVersion:
    """TF2 exports: a tf.function that decodes and calls the original signature function."""
    tf = import_tf()
    try:
        loaded = load_tf2(plan.source, plan.tags)
    except LoaderFailed as error:
        raise LoaderFailed(str(error), hint="--route session edits the graph in a TF1 session instead") from error
    originals = {key: loaded.signatures[key] for key in loaded.signatures}
    function = originals[plan.signature.key]
    _, specs = function.structured_input_signature
    image_alias, new_alias, spec = plan.image.alias, plan.new_alias, plan.spec

    def with_decoding(**inputs: Any) -> Any:
        images = decode_images(tf, inputs.pop(new_alias), spec)
        return function(**{image_alias: images}, **inputs)

    arguments = {a: tf.TensorSpec(s.shape, s.dtype, name=a) for a, s in specs.items() if a != image_alias}
    arguments[new_alias] = tf.TensorSpec([None], tf.string, name=new_alias)
    # autograph=False: the decoder uses tf.cond explicitly; converting it costs ~1.5 s and adds nothing.
    new = tf.function(with_decoding, autograph=False).get_concrete_function(**arguments)
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


# --------------------------------------------------------------------------
# The check before publishing
# --------------------------------------------------------------------------


def sample_jpeg(tf: Any, height: int, width: int, channels: int = 3, seed: int = 0) -> bytes:
    """A deterministic JPEG (smooth gradients plus noise, so resizing has work to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width - 1, 1), y / max(height - 1, 1), (x + y) / max(height + width - 2, 1)], axis=2)
    pixels = np.clip(base * 220 + rng.uniform(0, 35, size=base.shape), 0, 255).astype(np.uint8)
    if channels == 1:
        pixels = pixels[..., :1]
    return bytes(tf.io.encode_jpeg(pixels, quality=90).numpy())


@dataclass
class StagingCheck:
    """Callable on a staging folder; raises `VerificationFailed`; records what it saw in `summary`."""

    plan: ImagePlan
    tolerance: Tolerance = field(default_factory=Tolerance)
    summary: dict[str, Any] = field(default_factory=dict)

    def __call__(self, staging: Path) -> None:
        tf = import_tf()
        plan = self.plan
        jpeg = sample_jpeg(tf, plan.spec.height * 3 // 2 + 5, plan.spec.width * 2 // 3 + 7, plan.spec.channels)
        others = {k: v for k, v in sample_inputs(plan.signature, batch=1).items() if k != plan.image.alias}
        decoded = preprocess_one(tf, tf.constant(jpeg), plan.spec).numpy()[None]
        image_feed = tf.io.encode_base64(jpeg).numpy() if plan.spec.base64_in_graph else jpeg
        new_feeds = {plan.new_alias: np.array([image_feed], dtype=object), **others}
        old_results: dict[str, Any] = {}
        with load_session(plan.source, plan.tags) as old:
            reference = old.run(plan.signature.key, {plan.image.alias: decoded, **others})
            for key in old.signature_keys():
                old_results[key] = _run_samples(old, key, plan.meta.signature(key))
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
                f"signature '{plan.target}' of the new version differs from '{plan.signature.key}' fed the same "
                f"decoded JPEG under {', '.join(sorted(bad))}: {'; '.join(next(iter(bad.values())).failures())}; "
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
            got = _run_samples(new, new_key, plan.meta.signature(key))
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


def _run_samples(session: Any, key: str, view: SignatureView) -> dict[str, Any] | str:
    """Outputs of signature `key` (inputs as in `view`) on sample inputs, or why it could not run on them."""
    if any(t.name is None for t in view.inputs):
        return "skipped: composite inputs"
    try:
        return session.run(key, sample_inputs(view, batch=2))
    except LoaderFailed as error:
        return f"skipped: does not run on sample inputs ({first_line(error.__cause__ or error)})"


def staging_check(plan: ImagePlan, tolerance: Tolerance | None = None) -> StagingCheck:
    return StagingCheck(plan, tolerance or Tolerance())
