"""Convert sources that are TF1 graphs: a checkpoint with its meta graph, or a frozen GraphDef.

Each is loaded into a TF1 session; the signature names tensors of that
graph, and `SavedModelBuilder` writes it with the checkpoint's own saver.
"""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core import formats, protos
from smsurgery.core.errors import (
    CorruptModel,
    InvalidEdit,
    PathNotFound,
    TensorNotFound,
    UnsupportedModel,
    listing,
)
from smsurgery.core.formats import SourceFormat
from smsurgery.core.model import SignatureView
from smsurgery.graph.convert_source import Candidate, Candidates, TensorsNeeded
from smsurgery.graph.export import write_session
from smsurgery.graph.session import first_line, import_tf, session_for

# Ops whose dangling outputs are bookkeeping, never a model output.
# fmt: off
_NOT_OUTPUTS = frozenset({
    "NoOp", "Const", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "VarIsInitializedOp", "IsVariableInitialized", "SaveV2", "RestoreV2", "SaveSlices",
    "RestoreSlice", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "VarHandleOp", "VariableV2",
    "Placeholder", "PlaceholderWithDefault", "InitializeTableV2", "InitializeTableFromTextFileV2",
})
# fmt: on


class GraphSource:
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


def load_checkpoint(fmt: SourceFormat) -> GraphSource:
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
    return GraphSource(fmt, graph, session, saver=saver, main_op=main_op)


def load_frozen(fmt: SourceFormat) -> GraphSource:
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
    return GraphSource(fmt, graph, session, main_op=main_op)
