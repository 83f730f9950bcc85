"""Serving's `--batching_parameters_file`, and whether a model can be batched.

The file is a text `BatchingParameters` proto
(`tensorflow_serving/servables/tensorflow/session_bundle_config.proto`),
which tensorflow-serving-api does not ship; we declare the same message
(same field names and numbers, read from Serving's source) in our pool.
Serving refuses parameters whose `allowed_batch_sizes` do not increase or
do not end at `max_batch_size` (`bundle_factory_util.cc`), and
`batching_session.cc` concatenates every input along dimension 0 and splits
every output along it: a tensor whose dimension 0 is fixed (or a scalar)
cannot be batched.
"""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, message_factory, text_format

from smsurgery.core import protos
from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import MetaGraph
from smsurgery.core.textfile import read_config_text
from smsurgery.inspect.findings import Finding, finding

_FILE = "smsurgery/batching_parameters.proto"
# Batcher::QueueOptions().input_batch_size_limit, used when max_batch_size is unset.
DEFAULT_MAX_BATCH_SIZE = 1000
_WRAPPED = {  # field -> (number, wrapper type)
    "max_batch_size": (1, "Int64Value"),
    "batch_timeout_micros": (2, "Int64Value"),
    "max_enqueued_batches": (3, "Int64Value"),
    "num_batch_threads": (4, "Int64Value"),
    "thread_pool_name": (5, "StringValue"),
    "enable_large_batch_splitting": (8, "BoolValue"),
    "max_execution_batch_size": (9, "Int64Value"),
}


class BatchingFileError(SmsurgeryError):
    """A batching parameters file that does not parse."""


@cache
def batching_parameters_class() -> type[Any]:
    from google.protobuf import wrappers_pb2  # noqa: F401 - puts wrappers.proto in the default pool

    protos.message_class("google/protobuf/wrappers.proto", "google.protobuf.Int64Value")  # into our pool
    fdp = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package="tensorflow.serving", syntax="proto3", dependency=["google/protobuf/wrappers.proto"]
    )
    message = fdp.message_type.add(name="BatchingParameters")
    label = descriptor_pb2.FieldDescriptorProto
    for name, (number, wrapper) in _WRAPPED.items():
        message.field.add(
            name=name, number=number, type=label.TYPE_MESSAGE, label=label.LABEL_OPTIONAL,
            type_name=f".google.protobuf.{wrapper}",
        )  # fmt: skip
    message.field.add(name="allowed_batch_sizes", number=6, type=label.TYPE_INT64, label=label.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=label.TYPE_BOOL, label=label.LABEL_OPTIONAL)
    pool = protos.pool()
    try:
        pool.FindFileByName(_FILE)
    except KeyError:
        pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def parse_batching_file(path: str | Path) -> Any:
    """Parse the text proto; a syntax error is one line with its line and column."""
    path = Path(path)
    text = read_config_text(path, "batching parameters")
    message = batching_parameters_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        where = f"{error.GetLine()}:{error.GetColumn()}" if error.GetLine() is not None else "?"
        detail = str(error).split(" : ", 1)[-1]
        raise BatchingFileError(
            f"{path}:{where}: not a BatchingParameters text proto: {detail}",
            hint="fields: " + ", ".join([*_WRAPPED, "allowed_batch_sizes", "pad_variable_length_inputs"]),
        ) from error
    return message


def parameter_findings(params: Any, source: str) -> list[Finding]:
    sizes = list(params.allowed_batch_sizes)
    found = []
    max_size = params.max_batch_size.value if params.HasField("max_batch_size") else DEFAULT_MAX_BATCH_SIZE
    if sizes and any(b <= a for a, b in itertools.pairwise(sizes)):
        found.append(finding("SM-BATCH-CONFIG", source, f"allowed_batch_sizes must increase: {sizes}"))
    if sizes and sizes[-1] != max_size:
        found.append(
            finding(
                "SM-BATCH-CONFIG",
                source,
                f"Last entry in allowed_batch_sizes must match max_batch_size; last entry was {sizes[-1]}; "
                f"expected {max_size}",
            )
        )
    if params.HasField("num_batch_threads") and params.num_batch_threads.value < 1:
        found.append(finding("SM-BATCH-CONFIG", source, "num_batch_threads must be >= 1"))
    if max_size < 1:
        found.append(finding("SM-BATCH-CONFIG", source, f"max_batch_size must be >= 1 (is {max_size})"))
    return found


def batchability_findings(meta: MetaGraph, path: str) -> list[Finding]:
    found = []
    for signature in meta.signatures():
        for direction, tensors in (("input", signature.inputs), ("output", signature.outputs)):
            for tensor in tensors:
                subject = f"signature '{signature.key}' {direction} '{tensor.alias}'"
                fix = f"smsurgery shape set {path} {tensor.alias} --batch dynamic -s {signature.key}"
                if tensor.shape is None:
                    found.append(finding("SM-BATCH-UNKNOWN-RANK", subject, "unknown rank: batching assumes dim 0"))
                elif not tensor.shape:
                    found.append(finding("SM-BATCH-DIM0", subject, "a scalar has no dimension 0 to batch along", fix))
                elif tensor.shape[0] != -1:
                    found.append(
                        finding(
                            "SM-BATCH-DIM0",
                            subject,
                            f"dimension 0 is fixed at {tensor.shape[0]}: Serving concatenates requests along it",
                            fix,
                        )
                    )
    return found
