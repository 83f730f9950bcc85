"""`check --load`: what TensorFlow Serving does when a version loads, with real TensorFlow.

Serving loads a version with the TF1 session loader and its tag set (which
restores the variables and runs the init ops), then replays the warmup
records; a failure in either step fails the load. We do the same, then send
one generated request to every signature (Serving would load those, but
every client would get an error). Each failure becomes a finding carrying
TensorFlow's own message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smsurgery.core import protos
from smsurgery.core.errors import InvalidRequest, LoaderFailed, SmsurgeryError
from smsurgery.core.model import DEFAULT_SIGNATURE, MetaGraph, SavedModelFile, SignatureView
from smsurgery.graph.run import Runner
from smsurgery.graph.session import import_tf, load_session
from smsurgery.inspect.findings import Finding, finding
from smsurgery.serving.request_body import build_request
from smsurgery.serving.samples import sample_inputs
from smsurgery.serving.warmup import WARMUP_FILE, read_tfrecord


def load_findings(model: SavedModelFile, tags: tuple[str, ...]) -> tuple[list[Finding], bool]:
    """(findings, loaded): load under the TF1 loader, replay warmup, run each signature once."""
    found: list[Finding] = []
    try:
        with load_session(model.path, tags) as session:
            meta = _meta_graph(model, tags)
            runner = Runner(model, meta, session)
            found += _warmup_failures(model, meta, runner)
            found += _signature_failures(model, meta, runner)
    except LoaderFailed as error:
        message = error.message.split(": ", 1)[-1] if "TF1 session loader failed" in error.message else error.message
        return [finding("SM-LOAD-FAILED", f"tag set [{','.join(tags)}]", message)], False
    return found, True


def _meta_graph(model: SavedModelFile, tags: tuple[str, ...]) -> MetaGraph:
    for meta in model.proto.meta_graphs:
        if set(meta.meta_info_def.tags) == set(tags):
            return MetaGraph(model, meta)
    return model.meta_graph(tags)


def _signature_failures(model: SavedModelFile, meta: MetaGraph, runner: Runner) -> list[Finding]:
    found = []
    for signature in meta.signatures():
        try:
            if signature.method in ("classify", "regress"):
                _examples_once(model, meta, runner, signature)
            else:
                _predict_once(runner, signature)
        except SmsurgeryError as error:
            found.append(finding("SM-LOAD-SIGNATURE-FAILED", f"signature '{signature.key}'", error.message))
    return found


def _examples_once(model: SavedModelFile, meta: MetaGraph, runner: Runner, signature: SignatureView) -> None:
    """Classify/Regress with tf.Examples built from the features the graph parses, if we can tell which."""
    try:
        built = build_request(model, tags=meta.tags, signature=signature.key, rest=False)
    except SmsurgeryError:
        return  # the TF-free check already says why Serving's API refuses it
    if built.features is not None:
        runner.run_built(built)  # Serving's own output checks run too


def _predict_once(runner: Runner, signature: SignatureView) -> None:
    """A gRPC Predict with generated inputs; an unknown rank is tried as [1], then as a scalar.

    Generated strings say nothing (a model parsing tf.Examples or images rejects
    them for being made up), so signatures with string or composite inputs are
    not run.
    """
    if any(t.name is None or t.dtype.startswith("DT_STRING") for t in signature.inputs):
        return
    try:
        inputs = sample_inputs(signature)
    except InvalidRequest:
        return  # a dtype without sample values
    try:
        runner.predict(signature, inputs)
    except InvalidRequest:
        unknown = [t.alias for t in signature.inputs if t.shape is None]
        if not unknown:
            raise
        runner.predict(signature, {a: (v.reshape(()) if a in unknown else v) for a, v in inputs.items()})


def _warmup_failures(model: SavedModelFile, meta: MetaGraph, runner: Runner) -> list[Finding]:
    path = model.path / WARMUP_FILE
    if not path.is_file():
        return []
    try:
        records = read_tfrecord(path.read_bytes())
    except InvalidRequest:
        return []  # the TF-free check already reports the framing
    log_class = protos.message_class("tensorflow_serving/apis/prediction_log.proto", "tensorflow.serving.PredictionLog")
    tf = import_tf()
    found = []
    for number, record in enumerate(records[:1000]):
        log = log_class.FromString(record)
        try:
            _replay(log, meta, runner, tf)
        except (SmsurgeryError, KeyError, ValueError) as error:
            message = getattr(error, "message", None) or str(error)
            found.append(finding("SM-LOAD-WARMUP-FAILED", f"{WARMUP_FILE} record {number}", message))
            break  # Serving stops at the first failing record
    return found


def _replay(log: Any, meta: MetaGraph, runner: Runner, tf: Any) -> None:
    from tensorflow.core.framework import tensor_pb2

    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        request = log.predict_log.request
        signature = meta.signature(request.model_spec.signature_name or DEFAULT_SIGNATURE)
        inputs = {
            alias: tf.make_ndarray(protos.to_tf(tensor, tensor_pb2.TensorProto))
            for alias, tensor in request.inputs.items()
        }
        runner.predict(signature, inputs)
    elif kind in ("classify_log", "regress_log"):
        request = getattr(log, kind).request
        signature = meta.signature(request.model_spec.signature_name or DEFAULT_SIGNATURE)
        examples = [e.SerializeToString() for e in request.input.example_list.examples]
        serialized = np.empty(len(examples), dtype=object)
        serialized[:] = examples
        name = signature.input("inputs").name or ""
        targets = [t.name or "" for t in signature.outputs]
        runner.fetch({name: serialized}, targets)
