"""The gRPC form of a request: PredictRequest, ClassificationRequest, RegressionRequest.

Built from tensorflow-serving-api's protos in our private descriptor pool,
so `request --grpc` never starts the TensorFlow runtime. Raw bytes go into
`string_val` as they are (gRPC has no base64).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import text_format

from smsurgery.core import protos
from smsurgery.core.errors import InvalidRequest
from smsurgery.serving.request_body import BuiltRequest
from smsurgery.serving.rest import parse_predict
from smsurgery.serving.tf_example import (
    ExamplesCall,
    parse_examples,
)

_APIS = {
    "predict": ("tensorflow_serving/apis/predict.proto", "tensorflow.serving.PredictRequest"),
    "classify": ("tensorflow_serving/apis/classification.proto", "tensorflow.serving.ClassificationRequest"),
    "regress": ("tensorflow_serving/apis/regression.proto", "tensorflow.serving.RegressionRequest"),
}
_LOG = ("tensorflow_serving/apis/prediction_log.proto", "tensorflow.serving.PredictionLog")
_VALUE_FIELDS = {
    "DT_FLOAT": "float_val",
    "DT_DOUBLE": "double_val",
    "DT_INT32": "int_val",
    "DT_INT16": "int_val",
    "DT_INT8": "int_val",
    "DT_UINT8": "int_val",
    "DT_UINT16": "int_val",
    "DT_INT64": "int64_val",
    "DT_UINT32": "uint32_val",
    "DT_UINT64": "uint64_val",
    "DT_BOOL": "bool_val",
    "DT_STRING": "string_val",
}


def tensor_proto(array: np.ndarray, dtype: str) -> Any:
    """A TensorProto (our pool) with typed value fields, as clients usually send them."""
    if dtype not in _VALUE_FIELDS:
        raise InvalidRequest(f"cannot write a {dtype} tensor into a request")
    proto = protos.tensor_proto_class()()
    proto.dtype = protos.dtype_numbers()[dtype]
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    getattr(proto, _VALUE_FIELDS[dtype]).extend(array.ravel().tolist())
    return proto


def predict_arrays(built: BuiltRequest) -> dict[str, np.ndarray]:
    """The tensors of a predict request, read from its body by Serving's rules."""
    if not built.signature.inputs:
        return {}
    return parse_predict(built.body, built.lookup).inputs


def examples_call(built: BuiltRequest) -> ExamplesCall:
    return parse_examples(built.body)


def grpc_request(built: BuiltRequest) -> Any:
    """The PredictRequest / ClassificationRequest / RegressionRequest equal to the REST body."""
    request = protos.message_class(*_APIS[built.method])()
    request.model_spec.name = built.model_name
    if built.version is not None:
        request.model_spec.version.value = built.version
    request.model_spec.signature_name = built.signature.key
    if built.method == "predict":
        dtypes = {t.alias: t.dtype for t in built.signature.inputs}
        for alias, array in predict_arrays(built).items():
            request.inputs[alias].CopyFrom(tensor_proto(array, dtypes[alias]))
        return request
    call = examples_call(built)
    if call.context is not None:
        target = request.input.example_list_with_context
        target.context.CopyFrom(call.context)
    else:
        target = request.input.example_list
    for example in call.examples:
        target.examples.add().CopyFrom(example)
    return request


def message_text(message: Any) -> str:
    return text_format.MessageToString(message)


def prediction_log(request: Any, method: str) -> Any:
    log = protos.message_class(*_LOG)()
    getattr(log, f"{method}_log").request.CopyFrom(request)
    return log
