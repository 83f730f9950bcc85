"""Convert TF1 checkpoints, frozen GraphDefs and Keras files into a servable SavedModel.

Three routes, one outcome: a new version folder in a model base, written
through the atomic publisher, with exactly one signature.

- Checkpoint: `import_meta_graph` into a fresh graph, restore the variables,
  export with `SavedModelBuilder` and the checkpoint's own `Saver` (a fresh
  one would add a second set of save ops). The signature names tensors the
  user picks; without them we list the candidates and stop.
- Frozen GraphDef: `import_graph_def(name="")` keeps every tensor name, so
  the names the user knows from the graph are the names in the signature.
- Keras (`.keras`, `.h5`): a `tf.function` that calls the model and returns a
  dict keyed by the model's own output names, saved with
  `tf.saved_model.save` and that one signature. Keras' `model.export` would
  write two signatures (`serve`, `serving_default`) with outputs `output_0`.

Verification runs the source and the staged result (through the TF1 loader,
as TensorFlow Serving loads it) on the same generated inputs *before* the
staging folder is renamed into place, so a mismatch leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.core import formats
from smsurgery.core.errors import (
    InvalidName,
    InvalidOption,
    PublishError,
    UnsupportedModel,
    VerificationFailed,
    listing,
)
from smsurgery.core.formats import SourceFormat
from smsurgery.core.layout import has_saved_model, list_versions
from smsurgery.core.model import METHOD_PREFIX, SignatureView, parse_saved_model, signature_view
from smsurgery.core.tensor_pairs import parse_tensor_pairs
from smsurgery.graph.convert_graph import load_checkpoint, load_frozen
from smsurgery.graph.convert_keras import load_keras
from smsurgery.graph.convert_source import Candidates, Source, TensorsNeeded
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, load_session
from smsurgery.publishing.atomic import next_version
from smsurgery.publishing.comparison import Tolerance, compare_outputs, tolerance
from smsurgery.publishing.new_version import stage_version, version_location
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget
from smsurgery.serving.samples import sample_inputs
from smsurgery.storage.url import is_remote
from smsurgery.storage.url import parse as parse_url

CONVERT_SCHEMA = "smsurgery.convert/1"
METHODS = ("predict", "classify", "regress")

__all__ = ["ConvertReport", "TensorsNeeded", "Verification", "convert", "list_candidates"]


@dataclass(frozen=True)
class Verification:
    batch: int
    max_abs_diff: float
    outputs: dict[str, float]
    tolerance: Tolerance

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "batch": self.batch,
            "tolerance": self.tolerance.atol,
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
            "max_abs_diff": self.max_abs_diff,
            "outputs": dict(self.outputs),
        }


@dataclass(frozen=True)
class ConvertReport:
    source: Path
    format: SourceFormat
    base: Path | str  # URLs for a remote base
    version: int
    path: Path | str
    tags: tuple[str, ...]
    signature: SignatureView
    verification: Verification | None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CONVERT_SCHEMA,
            "source": str(self.source),
            "format": self.format.kind,
            "description": self.format.description,
            "base": str(self.base),
            "version": self.version,
            "path": str(self.path),
            "tags": list(self.tags),
            "signature": {"key": self.signature.key, **self.signature.to_json()},
            "verification": self.verification.to_json() if self.verification else None,
        }


def convert(
    source: str | Path,
    base: str | Path,
    *,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    signature: str = "serving_default",
    method: str = "predict",
    tags: Sequence[str] | None = None,
    target: PublishTarget = DEFAULT_TARGET,
    batch: int = 3,
) -> ConvertReport:
    """Write SOURCE as a new version of BASE; raise with nothing written when anything is wrong.

    `target` gives the new version's number, whether to verify and within
    what tolerance; the base is BASE (a `target.base` elsewhere is refused).
    """
    if target.base is not None and Path(target.base) != Path(base):
        raise InvalidOption(f"convert writes into BASE ({base}), not into {target.base}")
    version, verify = target.version, target.verify
    fmt = _convertible(formats.detect(source))
    tol = tolerance(target.rtol, target.atol)
    remote = is_remote(str(base))
    if remote:
        parse_url(str(base))  # a malformed URL fails here; the remote publisher checks the base itself
    else:
        base = Path(base)
    tag_set = tuple(tags) if tags else ("serve",)
    _check_target(base, version, signature)
    method_name = method if method.startswith(METHOD_PREFIX) else METHOD_PREFIX + method
    if method_name[len(METHOD_PREFIX) :] not in METHODS:
        raise InvalidName(f"unknown method '{method}'", hint=f"methods: {listing(METHODS)}")
    in_pairs = list(parse_tensor_pairs(inputs, "input").items())
    out_pairs = list(parse_tensor_pairs(outputs, "output").items())
    with _open_source(fmt) as src:
        src.plan(in_pairs, out_pairs, signature, method_name, tag_set)
        created = None if remote else _first_missing(Path(base))
        try:
            with stage_version(base, version) as staging:
                src.export(staging.path, tag_set)
                view = _staged_signature(staging.path, tag_set, signature)
                checked = _verify(src, staging.path, tag_set, view, batch, tol) if verify else None
        except BaseException:
            _remove_created(Path(base), created)
            raise
    number = staging.version
    if number is None:
        raise PublishError(f"publishing into {base} returned no version number")
    return ConvertReport(Path(source), fmt, base, number, version_location(base, number), tag_set, view, checked)


def list_candidates(source: str | Path) -> Candidates:
    """The placeholders and unconsumed tensors of a graph source (a Keras model's own inputs/outputs)."""
    fmt = _convertible(formats.detect(source))
    with _open_source(fmt) as src:
        return src.candidates()


def _convertible(fmt: SourceFormat) -> SourceFormat:
    if fmt.detail is not None:
        raise UnsupportedModel(f"{fmt.path} is {fmt.description}", hint=fmt.detail)
    if fmt.kind == "saved_model":
        raise UnsupportedModel(f"{fmt.path} is {fmt.description}: nothing to convert", hint="serve or edit it as it is")
    if not fmt.convertible:
        raise UnsupportedModel(
            f"{fmt.path} is {fmt.description}",
            hint="convert reads TF1 checkpoints, frozen GraphDefs (.pb, .pbtxt) and Keras files (.keras, .h5)",
        )
    return fmt


def _check_target(base: Path | str, version: int | None, signature: str) -> None:
    if not signature or signature == INIT_OP_SIGNATURE:
        raise InvalidName(f"'{signature}' cannot be a signature key", hint="e.g. --signature serving_default")
    if version is not None and version < 0:
        raise PublishError(f"--version {version}: versions are non-negative integers")
    if isinstance(base, str):
        return  # a URL: the remote publisher refuses a version folder or a taken version before writing
    if base.is_file():
        raise PublishError(f"{base} is a file, not a model base folder")
    if base.is_dir() and has_saved_model(base):
        raise PublishError(
            f"{base} is a version folder (it holds saved_model.pb), not a model base",
            hint=f"give the model base it belongs to, e.g. {base.parent}",
        )
    if version is not None and base.is_dir() and version in list_versions(base):
        raise PublishError(
            f"version {version} already exists in {base}", hint=f"the next free version is {next_version(base)}"
        )


def _first_missing(base: Path) -> Path | None:
    """The top-most folder of `base` that does not exist yet (the publisher creates it)."""
    missing = None
    for folder in (base, *base.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _remove_created(base: Path, created: Path | None) -> None:
    """After a failure, remove folders we created for BASE, if they are still empty."""
    if created is None:
        return
    for folder in (base, *base.parents):
        with contextlib.suppress(OSError):
            folder.rmdir()
        if folder == created:
            break


@contextlib.contextmanager
def _open_source(fmt: SourceFormat) -> Iterator[Source]:
    source: Source
    if fmt.kind in formats.KERAS_KINDS:
        source = load_keras(fmt)
    elif fmt.kind == formats.CHECKPOINT:
        source = load_checkpoint(fmt)
    else:
        source = load_frozen(fmt)
    try:
        yield source
    finally:
        source.close()


def _staged_signature(path: Path, tags: tuple[str, ...], key: str) -> SignatureView:
    saved_model = parse_saved_model(path / "saved_model.pb")
    for meta in saved_model.meta_graphs:
        if set(meta.meta_info_def.tags) == set(tags) and key in meta.signature_def:
            return signature_view(key, meta.signature_def[key])
    raise PublishError(f"the staged SavedModel has no signature '{key}' under tags [{','.join(tags)}]")


def _verify(
    src: Source, staged: Path, tags: tuple[str, ...], view: SignatureView, batch: int, tol: Tolerance
) -> Verification:
    feeds = sample_inputs(view, batch=batch, seed=0)
    try:
        expected = src.run(view, feeds)
    except Exception as error:
        raise VerificationFailed(
            f"the source does not run on generated inputs: {first_line(error)}",
            hint="nothing was written; pass --no-verify to convert without this check",
        ) from error
    with load_session(staged, tags) as loaded:
        got = loaded.run(view.key, feeds)
    result = compare_outputs(expected, {alias: got[alias] for alias in expected}, tol)
    diffs = {alias: item.distance for alias, item in result.outputs.items()}
    if not result:
        raise VerificationFailed(
            f"the converted model differs from the source: {'; '.join(result.failures())}", hint="nothing was written"
        )
    return Verification(batch=batch, max_abs_diff=result.max_abs, outputs=diffs, tolerance=tol)
