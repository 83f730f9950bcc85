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
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from smsurgery.core import formats, protos
from smsurgery.core.errors import (
    CorruptModel,
    InvalidEdit,
    InvalidName,
    PathNotFound,
    PublishError,
    TensorNotFound,
    UnsupportedModel,
    VerificationFailed,
    listing,
)
from smsurgery.core.formats import SourceFormat
from smsurgery.core.layout import has_saved_model, list_versions
from smsurgery.core.model import METHOD_PREFIX, SignatureView, parse_saved_model, signature_view
from smsurgery.core.tensor_pairs import parse_tensor_pairs
from smsurgery.graph.export import write_session
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, import_tf, load_session, session_for
from smsurgery.publishing.atomic import next_version, staged_version
from smsurgery.publishing.comparison import Tolerance, compare_outputs, tolerance
from smsurgery.serving.samples import sample_inputs

CONVERT_SCHEMA = "smsurgery.convert/1"
CANDIDATES_SCHEMA = "smsurgery.convert.candidates/1"
METHODS = ("predict", "classify", "regress")
# Ops whose dangling outputs are bookkeeping, never a model output.
# fmt: off
_NOT_OUTPUTS = frozenset({
    "NoOp", "Const", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "VarIsInitializedOp", "IsVariableInitialized", "SaveV2", "RestoreV2", "SaveSlices",
    "RestoreSlice", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "VarHandleOp", "VariableV2",
    "Placeholder", "PlaceholderWithDefault", "InitializeTableV2", "InitializeTableFromTextFileV2",
})
# fmt: on


@dataclass(frozen=True)
class Candidate:
    """A tensor that could be a signature input (a placeholder) or output (nothing consumes it)."""

    name: str
    op: str
    dtype: str
    shape: tuple[int, ...] | None

    def to_json(self) -> dict[str, Any]:
        shape = list(self.shape) if self.shape is not None else None
        return {"name": self.name, "op": self.op, "dtype": self.dtype, "shape": shape}


@dataclass(frozen=True)
class Candidates:
    source: Path
    format: SourceFormat
    inputs: tuple[Candidate, ...]
    outputs: tuple[Candidate, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CANDIDATES_SCHEMA,
            "source": str(self.source),
            "format": self.format.kind,
            "description": self.format.description,
            "inputs": [c.to_json() for c in self.inputs],
            "outputs": [c.to_json() for c in self.outputs],
        }


class TensorsNeeded(InvalidEdit):
    """`--inputs`/`--outputs` were not given for a graph source; carries the candidates to show."""

    def __init__(self, message: str, candidates: Candidates, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = candidates


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
    base: Path
    version: int
    path: Path
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


class Source(Protocol):
    """What each route offers: a model in memory that can name, plan, export and run one signature."""

    def candidates(self) -> Candidates: ...

    def plan(
        self,
        in_pairs: list[tuple[str, str]],
        out_pairs: list[tuple[str, str]],
        key: str,
        method: str,
        tags: tuple[str, ...],
    ) -> None: ...

    def export(self, path: Path, tags: tuple[str, ...]) -> None: ...

    def run(self, view: SignatureView, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def convert(
    source: str | Path,
    base: str | Path,
    *,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    signature: str = "serving_default",
    method: str = "predict",
    tags: Sequence[str] | None = None,
    version: int | None = None,
    verify: bool = True,
    batch: int = 3,
    rtol: float | None = None,
    atol: float | None = None,
) -> ConvertReport:
    """Write SOURCE as a new version of BASE; raise with nothing written when anything is wrong."""
    fmt = _convertible(formats.detect(source))
    tol = tolerance(rtol, atol)
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
        created = _first_missing(base)
        try:
            with staged_version(base, version) as staging:
                src.export(staging.path, tag_set)
                view = _staged_signature(staging.path, tag_set, signature)
                checked = _verify(src, staging.path, tag_set, view, batch, tol) if verify else None
        except BaseException:
            _remove_created(base, created)
            raise
    number = staging.version
    if number is None:
        raise PublishError(f"publishing into {base} returned no version number")
    return ConvertReport(Path(source), fmt, base, number, base / str(number), tag_set, view, checked)


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


def _check_target(base: Path, version: int | None, signature: str) -> None:
    if not signature or signature == INIT_OP_SIGNATURE:
        raise InvalidName(f"'{signature}' cannot be a signature key", hint="e.g. --signature serving_default")
    if base.is_file():
        raise PublishError(f"{base} is a file, not a model base folder")
    if base.is_dir() and has_saved_model(base):
        raise PublishError(
            f"{base} is a version folder (it holds saved_model.pb), not a model base",
            hint=f"give the model base it belongs to, e.g. {base.parent}",
        )
    if version is not None and version < 0:
        raise PublishError(f"--version {version}: versions are non-negative integers")
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
        from smsurgery.graph.convert_keras import load_keras

        source = load_keras(fmt)
    elif fmt.kind == formats.CHECKPOINT:
        source = _load_checkpoint(fmt)
    else:
        source = _load_frozen(fmt)
    try:
        yield source
    finally:
        source.close()


class _GraphSource:
    """A checkpoint or frozen graph, live in a TF1 session."""

    def __init__(self, fmt: SourceFormat, graph: Any, session: Any, *, saver: Any = None, main_op: Any = None) -> None:
        self.fmt, self.graph, self.session, self.saver, self.main_op = fmt, graph, session, saver, main_op
        self.signatures: dict[str, Any] = {}

    def close(self) -> None:
        self.session.close()

    def candidates(self) -> Candidates:
        scope = self.saver.saver_def.filename_tensor_name.split("/")[0] + "/" if self.saver is not None else None
        ops = self.graph.get_operations()
        inputs = [
            _candidate(t)
            for op in ops
            if op.type in ("Placeholder", "PlaceholderWithDefault") and not (scope and op.name.startswith(scope))
            for t in op.outputs
        ]
        outputs = [
            _candidate(t)
            for op in ops
            if op.type not in _NOT_OUTPUTS
            and not (scope and op.name.startswith(scope))
            and not op.name.endswith("/Read/ReadVariableOp")
            for t in op.outputs
            if not t.consumers()
        ]
        return Candidates(self.fmt.path, self.fmt, tuple(inputs), tuple(outputs))

    def plan(
        self,
        in_pairs: list[tuple[str, str]],
        out_pairs: list[tuple[str, str]],
        key: str,
        method: str,
        tags: tuple[str, ...],
    ) -> None:
        if not in_pairs or not out_pairs:
            found = self.candidates()
            missing = " and ".join(n for n, p in (("--inputs", in_pairs), ("--outputs", out_pairs)) if not p)
            raise TensorsNeeded(
                f"{self.fmt.path} is {self.fmt.description}: name its signature tensors with {missing} ALIAS=TENSOR",
                found,
                hint=f"placeholders: {listing(c.name for c in found.inputs)}; "
                f"unconsumed tensors: {listing(c.name for c in found.outputs[:10])}",
            )
        tf = import_tf()
        v1 = tf.compat.v1.saved_model
        with self.graph.as_default():
            build = {
                role: {alias: v1.build_tensor_info(self._tensor(name, role)) for alias, name in pairs}
                for role, pairs in (("input", in_pairs), ("output", out_pairs))
            }
        signature = v1.build_signature_def(build["input"], build["output"], method)
        if not v1.is_valid_signature(signature):
            raise InvalidEdit(f"this is not a valid {method} signature", hint=_METHOD_NEEDS.get(method, ""))
        self.signatures = {key: signature}

    def _tensor(self, name: str, role: str) -> Any:
        full = name if ":" in name else f"{name}:0"
        with contextlib.suppress(KeyError, ValueError):
            return self.graph.get_tensor_by_name(full)
        op_name = full.rpartition(":")[0]
        ops = {op.name: op for op in self.graph.get_operations()}
        if op_name in ops:
            outs = listing(t.name for t in ops[op_name].outputs)
            raise TensorNotFound(f"op '{op_name}' in {self.fmt.path} has no tensor '{full}'", hint=f"it has: {outs}")
        close = difflib.get_close_matches(op_name, [n for n, op in ops.items() if op.outputs], n=5, cutoff=0.6)
        found = self.candidates()
        pool = found.inputs if role == "input" else found.outputs
        hint = (
            f"close names: {listing(f'{n}:0' for n in close)}"
            if close
            else f"{role} candidates: {listing(c.name for c in pool[:10])}"
        )
        raise TensorNotFound(f"no {role} tensor '{name}' in {self.fmt.path}", hint=hint)

    def export(self, path: Path, tags: tuple[str, ...]) -> None:
        write_session(
            self.session,
            path,
            tags=tags,
            signature_def_map=self.signatures,
            saver=self.saver,
            main_op=self.main_op,
            clear_devices=True,  # a training machine's device pins mean nothing to the server
            strip_default_attrs=True,  # lets older Serving binaries load the graph
        )

    def run(self, view: SignatureView, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed_dict = {view.input(alias).name: value for alias, value in feeds.items()}
        return self.session.run({t.alias: t.name for t in view.outputs}, feed_dict=feed_dict)


_METHOD_NEEDS = {
    "tensorflow/serving/classify": "classify takes input 'inputs' (DT_STRING, serialized tf.Example) and gives "
    "'classes' (DT_STRING) and/or 'scores' (DT_FLOAT)",
    "tensorflow/serving/regress": "regress takes input 'inputs' (DT_STRING, serialized tf.Example) and gives "
    "'outputs' (DT_FLOAT)",
}


def _candidate(tensor: Any) -> Candidate:
    shape = None if tensor.shape.rank is None else tuple(-1 if d is None else int(d) for d in tensor.shape.as_list())
    return Candidate(tensor.name, tensor.op.type, protos.dtype_name(tensor.dtype.as_datatype_enum), shape)


def _load_checkpoint(fmt: SourceFormat) -> _GraphSource:
    assert fmt.prefix is not None
    parts = formats.checkpoint_parts(fmt.prefix)
    if not parts.meta.is_file():
        raise UnsupportedModel(
            f"checkpoint {fmt.prefix} has no meta graph ({parts.meta.name} is missing)",
            hint="convert needs the graph the variables belong to; a TF2 object-based checkpoint needs the "
            "model's code: restore it there and export a SavedModel",
        )
    if parts.missing:
        present = listing((p.name for p in parts.present), empty="no data files")
        raise PathNotFound(
            f"checkpoint {fmt.prefix} is incomplete: missing {listing(parts.missing)}", hint=f"found: {present}"
        )
    tf = import_tf()
    graph = tf.Graph()
    with graph.as_default():
        try:
            saver = tf.compat.v1.train.import_meta_graph(str(parts.meta), clear_devices=True)
        except Exception as error:
            raise CorruptModel(f"TensorFlow cannot import the meta graph {parts.meta}: {first_line(error)}") from error
        main_op = None
        if graph.get_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS) or graph.get_collection(
            tf.compat.v1.GraphKeys.LOCAL_VARIABLES
        ):
            main_op = tf.compat.v1.saved_model.main_op.main_op()
    session = session_for(graph)
    try:
        with graph.as_default():
            if saver is not None:
                saver.restore(session, parts.restore_path)
            if main_op is not None:
                session.run(main_op)
    except Exception as error:
        session.close()
        raise CorruptModel(f"restoring checkpoint {fmt.prefix} failed: {first_line(error)}") from error
    return _GraphSource(fmt, graph, session, saver=saver, main_op=main_op)


def _load_frozen(fmt: SourceFormat) -> _GraphSource:
    tf = import_tf()
    from google.protobuf import text_format

    graph_def = tf.compat.v1.GraphDef()
    try:
        data = fmt.path.read_bytes()
        if fmt.kind == formats.FROZEN_GRAPH_TEXT:
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
    except Exception as error:
        raise CorruptModel(f"{fmt.path} is not a readable GraphDef: {first_line(error)}") from error
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.graph_util.import_graph_def(graph_def, name="")
        except Exception as error:
            raise CorruptModel(f"TensorFlow cannot import {fmt.path}: {first_line(error)}") from error
    session = session_for(graph)
    # Frozen graphs keep table initializers as an op; GraphDefs carry no collections to find them by.
    main_op = next((op for op in graph.get_operations() if op.name == "init_all_tables"), None)
    if main_op is not None:
        session.run(main_op)
    return _GraphSource(fmt, graph, session, main_op=main_op)


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
