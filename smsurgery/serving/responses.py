"""What TensorFlow Serving answers: predict, classify and regress responses, from a session's outputs.

The other half of `rest.py` (bodies in): MakeJsonFromTensors,
PostProcessClassificationResult and PostProcessRegressionResult, with their
checks and Serving's messages, so that `smsurgery run` answers as Serving
would: `predictions` (row requests) or `outputs` (columnar), `results` for
classify and regress, DT_STRING outputs whose alias ends in `_bytes` as
`{"b64": ...}`, floats written as Serving writes them. Outputs are numpy
arrays, as a session returns them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from smsurgery.core.errors import InvalidRequest
from smsurgery.serving.rest import (
    COLUMNAR,
    NUMPY_TYPES,
    Raw,
    as_bytes,
    decimal_text,
    dtype_text,
    dumps,
    nest,
    shape_text,
)


@dataclass(frozen=True)
class Response:
    """A response body as Serving writes it; `data` is what a JSON client reads."""

    text: str

    @property
    def data(self) -> Any:
        return json.loads(self.text)


_DT_OF_KIND = {np.dtype(v): k for k, v in NUMPY_TYPES.items()}


def numpy_dtype_name(array: np.ndarray) -> str:
    if array.dtype.kind in "OSU":
        return "DT_STRING"
    if array.dtype == np.float16:
        return "DT_HALF"
    return _DT_OF_KIND.get(array.dtype, f"DT_{array.dtype.name.upper()}")


def tensor_json(array: np.ndarray, alias: str) -> Any:
    """AddTensorValues: a tensor as nested lists of Serving-formatted leaves."""
    dtype = numpy_dtype_name(array)
    flat: list[Any]
    if dtype == "DT_STRING":
        binary = alias.endswith("_bytes")
        values = [as_bytes(v) for v in array.ravel()]
        flat = [
            {"b64": base64.b64encode(v).decode("ascii")} if binary else v.decode("utf-8", "replace") for v in values
        ]
    elif dtype in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF"):
        single = dtype != "DT_DOUBLE"
        flat = [Raw(decimal_text(float(v), single=single)) for v in array.ravel()]
    elif dtype in NUMPY_TYPES:
        flat = array.ravel().tolist()
    else:
        raise InvalidRequest(f"Failed to write JSON value for tensor type: {dtype_text(dtype)}")
    return nest(flat, array.shape)


def predict_response(outputs: dict[str, np.ndarray], fmt: str) -> Response:
    """MakeJsonFromTensors: `predictions` for row requests, `outputs` for columnar ones."""
    if not outputs:
        raise InvalidRequest("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    if fmt == COLUMNAR:
        values = {name: tensor_json(arrays[name], name) for name in names}
        body = values if len(names) > 1 else values[names[0]]
        return Response(dumps({"outputs": body}, pretty=True))
    batch = -1
    for name in names:
        if arrays[name].ndim == 0:
            raise InvalidRequest(f"Tensor name: {name} has no shape information")
        if batch >= 0 and arrays[name].shape[0] != batch:
            raise InvalidRequest(
                f"Tensor name: {name} has inconsistent batch size: {arrays[name].shape[0]} expecting: {batch}"
            )
        batch = arrays[name].shape[0]
    rows = {name: tensor_json(arrays[name], name) for name in names}
    one = len(names) == 1
    predictions = rows[names[0]] if one else [{name: rows[name][i] for name in names} for i in range(batch)]
    return Response(dumps({"predictions": predictions}, pretty=True))


def _check_matrix(array: np.ndarray, role: str, wanted: str, examples: int) -> None:
    if array.ndim != 2:
        raise InvalidRequest(f"Expected Tensor shape: [batch_size num_classes] but got {shape_text(array.shape)}")
    dtype = numpy_dtype_name(array)
    if dtype != wanted:
        raise InvalidRequest(f"Expected {role} Tensor of {wanted}. Got: {dtype}")
    if array.shape[0] != examples:
        raise InvalidRequest(f"Expected {role} output batch size of {examples}. Got: {array.shape[0]}")


def classify_response(classes: np.ndarray | None, scores: np.ndarray | None, examples: int) -> Response:
    """PostProcessClassificationResult + MakeJsonFromClassificationResult."""
    if classes is not None:
        _check_matrix(classes, "classes", "DT_STRING", examples)
    if scores is not None:
        _check_matrix(scores, "scores", "DT_FLOAT", examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidRequest(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    reference = classes if classes is not None else scores
    count = reference.shape[1] if reference is not None else 0
    results = []
    for i in range(examples):
        row = []
        for c in range(count):
            label = as_bytes(classes[i, c]).decode("utf-8", "replace") if classes is not None else ""
            score = float(scores[i, c]) if scores is not None else 0.0
            row.append([label, Raw(decimal_text(score, single=True))])
        results.append(row)
    return Response(dumps({"results": results}, pretty=True))


def regress_response(output: np.ndarray, examples: int) -> Response:
    """PostProcessRegressionResult + MakeJsonFromRegressionResult."""
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise InvalidRequest(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            + shape_text(output.shape)
        )
    if output.shape[0] != examples:
        raise InvalidRequest(f"Input batch size did not match output batch size: {examples} vs. {output.shape[0]}")
    if numpy_dtype_name(output) != "DT_FLOAT":
        raise InvalidRequest(f"Expected output Tensor of DT_FLOAT.  Got: {numpy_dtype_name(output)}")
    values = [Raw(decimal_text(float(v), single=True)) for v in output.ravel()]
    return Response(dumps({"results": values}, pretty=True))
