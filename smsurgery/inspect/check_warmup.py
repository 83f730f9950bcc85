"""Warmup findings: `assets.extra/tf_serving_warmup_requests` as Serving reads it.

`saved_model_warmup_util.cc` reads the file with TensorFlow's record reader
(both CRCs checked: "corrupted record at N"), parses each record as a
PredictionLog, refuses more than 1000 records and every log type but
predict, classify, regress and multi_inference; each request then runs
against the version, so one that names a missing signature or alias fails
the load. A failed load is retried and the version never becomes available.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf import message as pb_message

from smsurgery.core import protos
from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import DEFAULT_SIGNATURE, MetaGraph
from smsurgery.inspect.findings import Finding, finding

# The same as smsurgery.serving.warmup's constants; that module is imported only when a warmup
# file exists, because it pulls in numpy (0.4 s of a 0.3 s check).
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000

_ACCEPTED = {"predict_log", "classify_log", "regress_log", "multi_inference_log"}
_METHOD_OF_LOG = {"classify_log": "classify", "regress_log": "regress"}


def warmup_findings(model_path: Any, meta: MetaGraph) -> list[Finding]:
    path = model_path / WARMUP_FILE
    if not path.is_file():
        return []
    from smsurgery.serving.warmup import read_tfrecord

    try:
        records = read_tfrecord(path.read_bytes())
    except InvalidRequest as error:
        return [finding("SM-WARMUP-CORRUPT", WARMUP_FILE, f"Data loss: {error.message}")]
    found: list[Finding] = []
    if len(records) > MAX_WARMUP_RECORDS:
        found.append(
            finding(
                "SM-WARMUP-TOO-MANY",
                WARMUP_FILE,
                f"{len(records)} records: Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS})",
            )
        )
    log_class = protos.message_class("tensorflow_serving/apis/prediction_log.proto", "tensorflow.serving.PredictionLog")
    reported: set[tuple[str, str]] = set()  # the same problem once, not once per record
    for number, record in enumerate(records):
        for item in _record_findings(log_class, number, record, meta):
            if (item.code, item.message) not in reported:
                reported.add((item.code, item.message))
                found.append(item)
    return found


def _record_findings(log_class: Any, number: int, record: bytes, meta: MetaGraph) -> Iterator[Finding]:
    subject = f"{WARMUP_FILE} record {number}"
    log = log_class()
    try:
        log.ParseFromString(record)
    except pb_message.DecodeError:
        yield finding("SM-WARMUP-CORRUPT", subject, "Failed to parse warmup record as a PredictionLog")
        return
    kind = log.WhichOneof("log_type")
    if kind not in _ACCEPTED:
        yield finding("SM-WARMUP-LOG-TYPE", subject, f"Unsupported log_type for warmup: {kind or 'none'}")
        return
    if kind == "predict_log":
        yield from _predict_findings(subject, log.predict_log.request, meta)
    elif kind == "multi_inference_log":
        for task in log.multi_inference_log.request.tasks:
            yield from _signature_findings(subject, task.model_spec.signature_name, None, meta)
    else:
        request = getattr(log, kind).request
        yield from _signature_findings(subject, request.model_spec.signature_name, _METHOD_OF_LOG[kind], meta)


def _signature_findings(subject: str, key: str, method: str | None, meta: MetaGraph) -> Iterator[Finding]:
    key = key or DEFAULT_SIGNATURE
    if key not in meta.signature_keys():
        yield finding(
            "SM-WARMUP-REQUEST",
            subject,
            f"the request names signature '{key}', which this meta graph lacks "
            f"(it has: {', '.join(meta.signature_keys()) or 'none'})",
        )
        return
    signature = meta.signature(key)
    if method is not None and signature.method != method:
        yield finding(
            "SM-WARMUP-REQUEST",
            subject,
            f"a {method} request to signature '{key}', whose method is {signature.method_name}",
        )


def _predict_findings(subject: str, request: Any, meta: MetaGraph) -> Iterator[Finding]:
    problems = list(_signature_findings(subject, request.model_spec.signature_name, None, meta))
    yield from problems
    if problems:
        return
    signature = meta.signature(request.model_spec.signature_name or DEFAULT_SIGNATURE)
    inputs = {t.alias: t for t in signature.inputs}
    for alias in sorted(request.inputs):
        if alias not in inputs:
            yield finding(
                "SM-WARMUP-REQUEST",
                subject,
                f"input '{alias}' is not an input of signature '{signature.key}' (it has: {', '.join(inputs)})",
            )
            continue
        sent = protos.dtype_name(request.inputs[alias].dtype)
        if sent != inputs[alias].dtype.removesuffix("_REF"):
            yield finding(
                "SM-WARMUP-REQUEST",
                subject,
                f"input '{alias}' is sent as {sent}; signature '{signature.key}' expects {inputs[alias].dtype}",
            )
    for alias in sorted(set(inputs) - set(request.inputs)):
        yield finding(
            "SM-WARMUP-REQUEST", subject, f"input '{alias}' of signature '{signature.key}' is not in the request"
        )
    outputs = {t.alias for t in signature.outputs}
    for alias in request.output_filter:
        if alias not in outputs:
            yield finding("SM-WARMUP-REQUEST", subject, f"output_filter names '{alias}', not an output")
