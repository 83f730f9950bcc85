"""TensorFlow Serving's REST rules in pure Python: bodies in, tensors out.

A port of the semantics of tensorflow_serving/util/json_tensor.cc and of the
checks around it (predict_util.cc, classifier.cc, regressor.cc), so that
`smsurgery run` accepts exactly the bodies Serving accepts, rejects the others
with Serving's own messages:

- row format (`instances`) and columnar format (`inputs`), never both;
- integers must be JSON integers; floats take `NaN`/`Infinity` and refuse a
  value a float cannot hold; `{"b64": ...}` for any DT_STRING input;
- declared shapes are *not* checked against the body (Serving feeds a batch
  of 3 into a scalar-shaped signature, as its half_plus_three example shows);
- classify/regress bodies (`examples`, optional `context`) become serialized
  tf.Examples (that side lives in `tf_example.py`).

What Serving answers is in `responses.py`.

Errors are `InvalidRequest` whose message is Serving's message. No
TensorFlow runtime here.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import DEFAULT_SIGNATURE, SignatureView

if TYPE_CHECKING:  # the rules themselves are pure Python: numpy loads only to hand tensors to a session
    import numpy as np

ROW, COLUMNAR, EXAMPLES = "row", "columnar", "examples"
METHOD_NAMES = {m: f"tensorflow/serving/{m}" for m in ("predict", "classify", "regress")}
SignatureLookup = Callable[[str], "SignatureView | None"]

_FLOAT_LIMITS = {"float": (24, 3.4028234663852886e38), "double": (53, 1.7976931348623157e308)}  # digits, finfo.max
_INT_RANGES = {
    "DT_INT32": (-(2**31), 2**31),
    "DT_INT16": (-(2**31), 2**31),
    "DT_INT8": (-(2**31), 2**31),
    "DT_UINT8": (-(2**31), 2**31),
    "DT_INT64": (-(2**63), 2**63),
    "DT_UINT32": (0, 2**32),
    "DT_UINT64": (0, 2**64),
}
NUMPY_TYPES = {  # the numpy type of each dtype a JSON body can carry
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_INT32": "int32",
    "DT_INT16": "int16",
    "DT_INT8": "int8",
    "DT_UINT8": "uint8",
    "DT_INT64": "int64",
    "DT_UINT32": "uint32",
    "DT_UINT64": "uint64",
    "DT_BOOL": "bool",
}
_FLOAT32 = struct.Struct("f")


def dtype_text(dtype: str) -> str:
    """TensorFlow's DataTypeString: `DT_FLOAT` -> `float`, `DT_INT32` -> `int32`."""
    return dtype.removeprefix("DT_").lower()


# ---- JSON text: Serving's number formatting and value rendering ----


class Raw(str):
    """A JSON token written as is (a number formatted the way Serving writes it)."""


def decimal_text(value: float, *, single: bool) -> str:
    """Serving's WriteDecimal: shortest `%g` that round-trips, `.0` for whole numbers."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    cast = _as_float32 if single else float
    if cast(float(text)) != cast(value):
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _as_float32(value: float) -> float:
    """The float32 nearest `value` (numpy's cast): infinite past float32's range."""
    try:
        return _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def dumps(value: Any, *, pretty: bool = False, _depth: int = 0) -> str:
    """JSON with Raw tokens, NaN/Infinity allowed; `pretty` breaks the two outer levels."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return decimal_text(value, single=False)
    if isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False)
    multiline = pretty and _depth < 2
    if isinstance(value, dict):
        items = [
            f"{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, pretty=pretty, _depth=_depth + 1)}"
            for k, v in value.items()
        ]
        open_, close = "{", "}"
    else:
        items = [dumps(v, pretty=pretty, _depth=_depth + 1) for v in value]
        open_, close = "[", "]"
        multiline = multiline and any(isinstance(v, (list, dict)) for v in value)
    if not multiline or not items:
        return open_ + ", ".join(items) + close
    pad = "    " * (_depth + 1)
    return open_ + "\n" + ",\n".join(pad + item for item in items) + "\n" + "    " * _depth + close


def value_text(value: Any, limit: int = 300) -> str:
    """Serving's JsonValueToString, on one line and shortened for error messages."""
    try:
        text = dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def loads(text: str | bytes) -> dict[str, Any]:
    """Parse a request body as Serving does (NaN and Infinity allowed; an object at the top)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text.strip():
        raise InvalidRequest("JSON Parse error: The document is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequest(f"JSON Parse error: {error.msg} at offset: {error.pos}") from error
    except RecursionError as error:
        raise InvalidRequest("JSON Parse error: the body is nested too deeply") from error
    if not isinstance(doc, dict):
        raise InvalidRequest(f"JSON Value: {value_text(doc)} Is not object")
    return doc


def format_error(doc: Any, message: str) -> InvalidRequest:
    return InvalidRequest(f"JSON Value: {value_text(doc)} {message}")


# ---- JSON values -> tensors (GetDenseTensorShape + FillTensorProto) ----


def is_b64_object(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def b64_decode(value: Any) -> bytes:
    """absl::Base64Unescape: the standard alphabet, padding optional."""
    if not is_b64_object(value):
        raise InvalidRequest(f"JSON Value: {value_text(value)} not formatted correctly for base64 data")
    text = "".join(value["b64"].split())
    if len(text) % 4 == 1:
        raise InvalidRequest("Unable to base64 decode")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidRequest("Unable to base64 decode") from error


def is_lossless(value: int | float, target: str) -> bool:
    digits, limit = _FLOAT_LIMITS[target]
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return abs(value) <= (1 << digits) - 1
    number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
    return not math.isfinite(number) or -limit <= number <= limit


def _type_error(value: Any, dtype: str) -> InvalidRequest:
    return InvalidRequest(
        f"JSON Value: {value_text(value)} Type: {json_type(value)} is not of expected type: {dtype_text(dtype)}"
    )


def _scalar(value: Any, dtype: str) -> Any:
    """AddValueToTensor: one JSON leaf as a value of `dtype`, or Serving's error."""
    is_bool = isinstance(value, bool)
    is_int = isinstance(value, int) and not is_bool
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if not (is_int or isinstance(value, float)):
            raise _type_error(value, dtype)
        target = dtype_text(dtype)
        if not is_lossless(value, target):
            raise InvalidRequest(
                f"Cannot convert JSON value: {value_text(value)} to {target} without loss of precision."
            )
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not is_int or not low <= value < high:
            raise _type_error(value, dtype)
        return value
    if dtype == "DT_STRING":
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogatepass")
    if dtype == "DT_BOOL":
        if not is_bool:
            raise _type_error(value, dtype)
        return value
    raise InvalidRequest(f"Conversion of JSON Value: {value_text(value)} to type: {dtype_text(dtype)}")


def dense_shape(value: Any) -> list[int]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: str, out: list[Any]) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise InvalidRequest(
                f"JSON Value: {value_text(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != "DT_STRING":
                raise _type_error(value, dtype)
            out.append(b64_decode(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidRequest(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidRequest(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


@dataclass(frozen=True)
class JsonTensor:
    """A tensor read from JSON by Serving's rules: its values, flat in row-major order, and its shape."""

    dtype: str
    shape: tuple[int, ...]
    values: list[Any]

    @property
    def size(self) -> int:
        return len(self.values)

    def array(self) -> np.ndarray:
        """As a numpy array of the tensor's dtype, for a session to feed."""
        import numpy as np

        if self.dtype == "DT_STRING":
            array = np.empty(len(self.values), dtype=object)
            array[:] = self.values
            return array.reshape(self.shape)
        if self.dtype in ("DT_FLOAT", "DT_DOUBLE"):
            return np.array(self.values, dtype=np.float64).astype(NUMPY_TYPES[self.dtype]).reshape(self.shape)
        if self.dtype == "DT_UINT64":
            return np.array(self.values, dtype=np.uint64).reshape(self.shape)
        if self.dtype == "DT_BOOL":
            return np.array(self.values, dtype=np.bool_).reshape(self.shape)
        # int_val holds int32; narrower types wrap as in Tensor::FromProto.
        return np.array(self.values, dtype=np.int64).astype(NUMPY_TYPES[self.dtype]).reshape(self.shape)


def json_tensor(value: Any, dtype: str) -> JsonTensor:
    """One JSON value (scalar, nested list, b64 object) as a tensor of `dtype`, by Serving's rules."""
    shape = dense_shape(value)
    flat: list[Any] = []
    _fill(value, 0, shape, dtype, flat)
    return JsonTensor(dtype, tuple(shape), flat)


def json_to_array(value: Any, dtype: str) -> np.ndarray:
    """`json_tensor` as a numpy array."""
    return json_tensor(value, dtype).array()


def stack(tensors: list[JsonTensor]) -> JsonTensor:
    """Tensors of one shape along a new first dimension (`np.stack`)."""
    first = tensors[0]
    return JsonTensor(first.dtype, (len(tensors), *first.shape), [v for t in tensors for v in t.values])


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """Serving's ShapeToString / TensorShape::DebugString: `[3,1]`."""
    return "[" + ",".join(str(d) for d in shape) + "]"


# ---- predict bodies ----


@dataclass(frozen=True)
class PredictCall:
    """A predict body as Serving reads it: the signature named in it and tensors by alias."""

    signature_name: str  # as written in the body; "" means the default signature
    format: str  # row | columnar
    tensors: dict[str, JsonTensor]

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """The tensors as numpy arrays, for a session to feed."""
        return {alias: tensor.array() for alias, tensor in self.tensors.items()}


def signature_name_of(doc: dict[str, Any]) -> str:
    if "signature_name" not in doc:
        return ""
    if not isinstance(doc["signature_name"], str):
        raise format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
    return doc["signature_name"]


def parse_predict(doc: dict[str, Any], lookup: SignatureLookup) -> PredictCall:
    """FillPredictRequestFromJson, with the signature's input dtypes from `lookup`."""
    name = signature_name_of(doc)
    signature = lookup(name or DEFAULT_SIGNATURE)
    if signature is None:
        raise InvalidRequest(f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature def')
    dtypes = {t.alias: t.dtype for t in signature.inputs}
    if not dtypes:
        raise InvalidRequest(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    if "instances" in doc and "inputs" in doc:
        raise format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    if "instances" in doc:
        items = doc["instances"]
        if not isinstance(items, list):
            raise format_error(doc, "Excepting 'instances' to be an list/array")
        if not items:
            raise format_error(doc, "No values in 'instances' array")
        return PredictCall(name, ROW, _from_instances(items, dtypes))
    if "inputs" in doc:
        return PredictCall(name, COLUMNAR, _from_inputs(doc["inputs"], dtypes))
    raise InvalidRequest("Missing 'inputs' or 'instances' key")


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64_object(value)


class _Rows:
    """Instances of one request, batched per alias as AddInstanceItem does."""

    def __init__(self, dtypes: dict[str, str]) -> None:
        self.dtypes = dtypes
        self.values: dict[str, list[JsonTensor]] = {}

    def add(self, name: str, value: Any) -> None:
        if name not in self.dtypes:
            raise InvalidRequest(f"JSON object: does not have named input: {name}")
        tensor = json_tensor(value, self.dtypes[name])
        previous = self.values.setdefault(name, [])
        if previous:
            first = previous[0]
            if first.size != tensor.size:
                raise InvalidRequest(f"Expecting tensor size: {first.size} but got: {tensor.size}")
            if first.shape != tensor.shape:
                raise InvalidRequest(f"Expecting shape {shape_text(first.shape)} but got: {shape_text(tensor.shape)}")
        previous.append(tensor)

    def batched(self) -> dict[str, JsonTensor]:
        return {name: stack(tensors) for name, tensors in self.values.items()}


def _from_instances(items: list[Any], dtypes: dict[str, str]) -> dict[str, JsonTensor]:
    if not isinstance(items[0], dict) and len(dtypes) > 1:
        raise InvalidRequest(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    names = sorted(dtypes)
    objects = _is_element_object(items[0])
    rows = _Rows(dtypes)
    for index, item in enumerate(items):
        if objects:
            if not _is_element_object(item):
                raise InvalidRequest(f"Expecting object but got list at item {index} of input list")
            for name, value in item.items():
                try:
                    rows.add(name, value)
                except InvalidRequest as error:
                    raise InvalidRequest(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: {error.message}"
                    ) from error
            if set(item) != set(names):
                raise InvalidRequest(
                    f"Failed to process element: {index} of 'instances' list. JSON object: {value_text(item)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if _is_element_object(item):
                raise InvalidRequest(f"Expecting value/list but got object at item {index} of input list")
            try:
                rows.add(names[0], item)
            except InvalidRequest as error:
                raise InvalidRequest(
                    f"Failed to process element: {index} of 'instances' list. Error: INVALID_ARGUMENT: {error.message}"
                ) from error
    return rows.batched()


def _from_inputs(value: Any, dtypes: dict[str, str]) -> dict[str, JsonTensor]:
    names = sorted(dtypes)
    if not isinstance(value, dict) or is_b64_object(value):
        if len(dtypes) > 1:
            raise InvalidRequest(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        return {names[0]: json_tensor(value, dtypes[names[0]])}
    tensors = {}
    for name in names:
        if name not in value:
            raise InvalidRequest(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = json_tensor(value[name], dtypes[name])
    return tensors


def check_predict(signature: SignatureView, inputs: Mapping[str, object]) -> None:
    """VerifySignature and VerifyRequestInputsSize of predict_util.cc."""
    if signature.method_name not in METHOD_NAMES.values():
        raise InvalidRequest(
            "Expected prediction signature method_name to be one of {"
            + ", ".join(METHOD_NAMES.values())
            + f"}}. Was: {signature.method_name}"
        )
    sent, wanted = set(inputs), {t.alias for t in signature.inputs}
    if len(sent) != len(wanted):
        raise InvalidRequest(
            f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
        )


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    """A flat row-major list as nested lists of `shape` (a bare value for a scalar)."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]
