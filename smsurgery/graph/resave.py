"""Re-export a TF2 model through TensorFlow so that the TF1 session loader (Serving) runs it.

Keras 3 models saved with `tf.saved_model.save` run under `tf.saved_model.load`
but not under the TF1 loader (see `smsurgery.inspect.restore_check`). Loading the
object graph and saving the loaded object again with every signature
(`tf.saved_model.save(loaded, signatures=loaded.signatures)`) writes one set
of variable handles that the saver restores: observed with TF 2.21, the
result runs under both loaders with the same keys, aliases and values.
Verification compares, per signature, the source under `tf.saved_model.load`
(the only loader that runs it) with the new version under both loaders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core.errors import SmsurgeryError, UnsupportedModel, VerificationFailed
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import MetaGraph, read
from smsurgery.graph.export import publish_saved
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import compare_arrays
from smsurgery.publishing.new_version import PublishedVersion, target_base
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget
from smsurgery.serving.samples import sample_inputs


@dataclass
class ReexportResult:
    source: ModelRef
    published: PublishedVersion | None
    notes: list[str] = field(default_factory=list)


def _compare(loaded: Any, meta: MetaGraph, staging: Path, notes: list[str]) -> list[str]:
    """Problems of `staging` against the source's tf.saved_model.load view, per signature."""
    problems, plans = [], []
    for key in meta.signature_keys():
        feeds = sample_inputs(meta.signature(key), batch=2)
        try:
            plans.append((key, feeds, run_tf2(loaded, key, feeds)))
        except SmsurgeryError as error:
            notes.append(f"'{key}' did not run on generated inputs in the source either: {first_line(error)}")
    new_tf2 = load_tf2(staging)
    with load_session(staging, ["serve"]) as session:
        for key, feeds, expected in plans:
            for loader, run in (("TF1 loader", session.run), ("tf.saved_model.load", None)):
                try:
                    values = run(key, feeds) if run else run_tf2(new_tf2, key, feeds)
                except SmsurgeryError as error:
                    problems.append(f"'{key}' fails under the {loader}: {error}")
                    continue
                for alias, value in expected.items():
                    compared = compare_arrays(value, values[alias])
                    if not compared:
                        problems.append(f"'{key}/{alias}' under the {loader} differs ({compared.detail})")
    return problems


def reexport(
    path: str | Path, *, tags: tuple[str, ...] | None = None, target: PublishTarget = DEFAULT_TARGET
) -> ReexportResult:
    """Load `path` with tf.saved_model.load and save it again, every signature kept, as a new version."""
    model = read(path)
    meta = model.meta_graph(tags)
    if meta.kind != "tf2":
        raise UnsupportedModel(
            f"{model.ref} is a TF1 export: the TF1 loader reads it as written, there is nothing to re-export"
        )
    require_intact(model)
    base = target_base(model, target.base)
    loaded = load_tf2(model.path, meta.tags)
    keys = [k for k in loaded.signatures if k != INIT_OP_SIGNATURE]
    if sorted(keys) != meta.signature_keys():
        raise UnsupportedModel(
            f"tf.saved_model.load lists signatures {sorted(keys)}, signature_def {meta.signature_keys()}"
        )
    result = ReexportResult(source=model.ref, published=None)
    if tuple(meta.tags) != ("serve",):
        result.notes.append(f"tf.saved_model.save tags the new version [serve] (the source: [{','.join(meta.tags)}])")

    def check(staging: Path) -> None:
        problems = _compare(loaded, meta, staging, result.notes)
        if problems:
            raise VerificationFailed("the re-exported model does not match the source: " + "; ".join(problems))

    signatures = {key: loaded.signatures[key] for key in keys}
    result.published = publish_saved(
        loaded, base, signatures=signatures, version=target.version, carry_from=model.path,
        before_publish=check if target.verify else None,
    )  # fmt: skip
    return result
