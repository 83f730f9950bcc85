"""The tf.Example side of TensorFlow Serving, and the values to send.

Serving's classify and regress APIs take `examples` (and an optional
`context`) in JSON, build a `tf.Example` from each (json_tensor.cc
MakeExampleFromJsonObject), feed them serialized into the signature's
`inputs`, and answer with `results` (classifier.cc, regressor.cc). This
module ports those rules; `rest.py` holds the predict side and
`responses.py` the answers.

A classify or regress signature takes serialized `tf.Example` strings, and
which features it needs is written nowhere in the signature: it is in the
graph, as the keys, dtypes and shapes of a `ParseExample`/`ParseExampleV2` op
(and its `Const` inputs) downstream of the input placeholder — sometimes
inside a function called by `StatefulPartitionedCall` (TF2 exports). We
follow the data flow from the input, into called functions, to the parse op,
so that sample bodies actually parse instead of failing with
"Feature: x (data type: float) is required but could not be found".

Sample values are JSON values (what a REST body carries), deterministic for
a seed: floats rounded to 4 decimals, strings as text, and a tiny valid PNG
for string inputs whose alias mentions an image. User values (`--input
ALIAS=VALUE`) become JSON values here too. Everything here is pure: no
TensorFlow runtime.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smsurgery.core import protos
from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import DEFAULT_SIGNATURE, SignatureView, TensorView
from smsurgery.core.names import node_of
from smsurgery.core.user_files import BODY_LIMIT, read_user_file
from smsurgery.serving.pcg64 import Generator
from smsurgery.serving.rest import (
    METHOD_NAMES,
    SignatureLookup,
    b64_decode,
    format_error,
    is_b64_object,
    is_lossless,
    json_type,
    nest,
    signature_name_of,
    value_text,
)
from smsurgery.serving.samples import MAX_JSON_SAMPLE_ELEMENTS, sample_json_values, tiny_png

if TYPE_CHECKING:  # arrays come from run and from .npy files; a request body is built without numpy
    import numpy as np

    from smsurgery.core.graphmodel import GraphModel, Scope

PARSE_OPS = frozenset({"ParseExample", "ParseExampleV2"})
_MAX_VISITS = 20000


@dataclass(frozen=True)
class FeatureSpec:
    """One feature that a parse op reads from each tf.Example."""

    name: str
    kind: str  # dense | sparse | ragged
    dtype: str  # DT_FLOAT | DT_INT64 | DT_STRING
    shape: tuple[int, ...] = ()  # dense only; -1 for a variable-length dense feature

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "dtype": self.dtype, "shape": list(self.shape)}


def _const_strings(scope: Scope, source: str) -> list[str] | None:
    node = scope.nodes.get(node_of(source))
    if node is None or node.op != "Const":
        return None
    return [value.decode("utf-8", "replace") for value in node.attr["value"].tensor.string_val]


def example_features(meta: Any, tensor_name: str) -> list[FeatureSpec] | None:
    """Features parsed from the serialized examples fed into `tensor_name` of a MetaGraphDef.

    The walk goes downstream from the input, into the functions it is passed
    to (`PartitionedCall`'s `f`: TF2 exports parse inside the signature's
    function). `None` when no parse op is reachable from it (the input is
    not a tf.Example string, or the model parses them in a way we do not
    follow).
    """
    from smsurgery.core.graphmodel import MAIN, GraphModel  # only for string inputs: the rest need no graph

    model = GraphModel(meta, lenient=True)
    queue: deque[tuple[str, str]] = deque([(MAIN, node_of(tensor_name))])
    seen: set[tuple[str, str]] = set(queue)
    found: list[FeatureSpec] = []
    parsed_any = False
    while queue and len(seen) < _MAX_VISITS:
        scope_name, source = queue.popleft()
        scope = model.scope(scope_name)
        for consumer, position in scope.consumers(source):
            if scope.inputs(consumer)[position].control:
                continue
            node = scope.nodes[consumer]
            if node.op in PARSE_OPS:
                features = _parse_op_features(scope, node) if position == 0 else None
                if features is not None:
                    parsed_any = True
                    found.extend(f for f in features if f.name not in {g.name for g in found})
                continue
            step = _next_step(model, scope_name, consumer, position)
            if step is not None and step not in seen:
                seen.add(step)
                queue.append(step)
    return found if parsed_any else None


def _next_step(model: GraphModel, scope: str, consumer: str, position: int) -> tuple[str, str] | None:
    """Where the walk goes from `consumer`: the argument of the function it passes the tensor to, or itself."""
    called = [c.function for c in model.calls(scope, consumer) if c.attr == "f"]
    if not called:
        return scope, consumer
    args = model.scope(called[0]).function_def.signature.input_arg
    return (called[0], args[position].name) if position < len(args) else None


def _dtype_list(attr: Any) -> list[str]:
    return [protos.dtype_name(t) for t in attr.list.type]


def _parse_op_features(scope: Scope, node: Any) -> list[FeatureSpec] | None:
    from smsurgery.core.graphmodel import data_inputs

    inputs = data_inputs(node)
    dense_types = _dtype_list(node.attr["Tdense"])
    dense_shapes = [tuple(int(d.size) for d in s.dim) for s in node.attr["dense_shapes"].list.shape]
    sparse_types = _dtype_list(node.attr["sparse_types"])
    if node.op == "ParseExample":
        n_sparse, n_dense = int(node.attr["Nsparse"].i), int(node.attr["Ndense"].i)
        keys = [_const_strings(scope, i) for i in inputs[2 : 2 + n_sparse + n_dense]]
        if any(k is None or len(k) != 1 for k in keys):
            return None
        sparse_keys = [k[0] for k in keys[:n_sparse]]  # type: ignore[index]
        dense_keys = [k[0] for k in keys[n_sparse:]]  # type: ignore[index]
        ragged_keys: list[str] = []
        ragged_types: list[str] = []
    else:
        found = [_const_strings(scope, i) for i in inputs[2:5]]
        if any(k is None for k in found):
            return None
        sparse_keys, dense_keys, ragged_keys = (list(k or []) for k in found)
        ragged_types = _dtype_list(node.attr["ragged_value_types"])
    features = [FeatureSpec(k, "dense", t, s) for k, t, s in zip(dense_keys, dense_types, dense_shapes, strict=False)]
    features += [FeatureSpec(k, "sparse", t) for k, t in zip(sparse_keys, sparse_types, strict=False)]
    features += [FeatureSpec(k, "ragged", t) for k, t in zip(ragged_keys, ragged_types, strict=False)]
    return features


# ---- Serving's classify/regress bodies and responses ----


def example_class() -> type[Any]:
    return protos.message_class("tensorflow/core/example/example.proto", "tensorflow.Example")


@dataclass(frozen=True)
class ExamplesCall:
    """A classify/regress body: tf.Example messages (our pool) and the optional context."""

    signature_name: str
    examples: tuple[Any, ...]
    context: Any | None

    def serialized(self) -> list[bytes]:
        """InputToSerializedExampleTensor: each example, appended to the serialized context."""
        prefix = self.context.SerializeToString(deterministic=True) if self.context is not None else b""
        return [prefix + e.SerializeToString(deterministic=True) for e in self.examples]


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_feature_value(name: str, value: Any, feature: Any) -> None:
    """AddValueToFeature of json_tensor.cc."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not is_b64_object(value)):
        raise InvalidRequest(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    if isinstance(value, bool):
        kind, item = "int64_list", int(value)
    elif isinstance(value, dict):
        kind, item = "bytes_list", b64_decode(value)
    elif isinstance(value, str):
        kind, item = "bytes_list", value.encode("utf-8", "surrogatepass")
    elif isinstance(value, int) and -(2**63) <= value < 2**64:
        if value >= 2**63:
            raise InvalidRequest(f"Feature: {name} has uint64 element. Only int64 is supported.")
        kind, item = "int64_list", value
    else:
        kind, item = "float_list", value
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise InvalidRequest(f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}")
    if kind == "float_list":
        if not is_lossless(item, "float"):
            raise InvalidRequest(f"Cannot convert JSON value: {value_text(value)} to float without loss of precision.")
        item = float(item)
    getattr(feature, kind).value.append(item)


def make_example(value: Any) -> Any:
    """MakeExampleFromJsonObject: `{feature: value or list}` as a tf.Example."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"Example must be JSON object but got JSON {json_type(value)}")
    example = example_class()()
    for name, content in value.items():
        feature = example.features.feature[str(name)]
        feature.Clear()
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(str(name), item, feature)
    return example


def example_bytes(value: Any) -> bytes:
    return make_example(value).SerializeToString(deterministic=True)


def parse_examples(doc: dict[str, Any]) -> ExamplesCall:
    """FillClassifyRegressRequestFromJson (Serving says "classify" in its message for both)."""
    name = signature_name_of(doc)
    context = make_example(doc["context"]) if "context" in doc else None
    if "examples" not in doc:
        raise format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    items = doc["examples"]
    if not isinstance(items, list):
        raise format_error(doc, "Expecting 'examples' value to be an list/array")
    if not items:
        raise format_error(doc, "'examples' value is an empty array")
    return ExamplesCall(name, tuple(make_example(item) for item in items), context)


def examples_signature(lookup: SignatureLookup, name: str, method: str) -> SignatureView:
    """GetClassificationSignatureDef / GetRegressionSignatureDef."""
    key = name or DEFAULT_SIGNATURE
    signature = lookup(key)
    if signature is None:
        raise InvalidRequest(f"No signature was found with the name: {key}")
    label = "classification" if method == "classify" else "regression"
    if signature.method_name != METHOD_NAMES[method]:
        raise InvalidRequest(
            f"Expected {label} signature method_name to be {METHOD_NAMES[method]}. Was: {signature.method_name}"
        )
    return signature


def examples_targets(signature: SignatureView, method: str) -> tuple[str, dict[str, str]]:
    """PreProcessClassification / PreProcessRegression: the input tensor and outputs by role."""
    inputs = {t.alias: t for t in signature.inputs}
    outputs = {t.alias: t for t in signature.outputs}
    label = "classification" if method == "classify" else "regression"
    if len(inputs) != 1:
        raise InvalidRequest("Expected one input Tensor.")
    if method == "classify" and len(outputs) not in (1, 2):
        raise InvalidRequest(f"Expected one or two output Tensors, found {len(outputs)}")
    if method == "regress" and len(outputs) != 1:
        raise InvalidRequest("Expected one output Tensor.")
    if "inputs" not in inputs or inputs["inputs"].name is None:
        raise InvalidRequest(f"No {label} inputs found in SignatureDef: {signature.key}")
    roles = ("classes", "scores") if method == "classify" else ("outputs",)
    targets = {role: outputs[role].name for role in roles if role in outputs and outputs[role].name}
    if not targets:
        wanted = '"classes" or "scores"' if method == "classify" else '"outputs"'
        raise InvalidRequest(f"Expected {label} signature outputs to contain {wanted}. Signature was: {signature.key}")
    return inputs["inputs"].name or "", targets


# ---- sample values (JSON, as a REST body carries them) ----


def sample_feature_value(feature: FeatureSpec, *, index: int = 0, seed: int = 0) -> Any:
    """A value for one feature of a sample example; a bare value when it holds one element."""
    count = 1
    if feature.kind == "dense":
        count = math.prod(d if d > 0 else 1 for d in feature.shape)
    rng = Generator(seed + index + sum(feature.name.encode()))
    if feature.dtype == "DT_FLOAT":
        values: list[Any] = [round(v, 4) for v in rng.uniform(count)]
    elif feature.dtype == "DT_INT64":
        values = rng.integers(5, count)
    else:
        values = [f"{feature.name}-{index}-{i}" if count > 1 else f"{feature.name}-{index}" for i in range(count)]
    if feature.kind == "dense" and count == 1 and len(feature.shape) <= 1:
        return values[0]
    return values


def sample_example(features: list[FeatureSpec], *, index: int = 0, seed: int = 0) -> dict[str, Any]:
    """One example object (feature name -> value) in Serving's `examples` format."""
    return {f.name: sample_feature_value(f, index=index, seed=seed) for f in features}


def b64(data: bytes) -> dict[str, str]:
    """Serving's binary value: `{"b64": ...}` with the standard alphabet."""
    return {"b64": base64.b64encode(data).decode("ascii")}


def is_text(data: bytes) -> bool:
    """Bytes that read back unchanged as a JSON string (UTF-8, no control characters)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch >= " " or ch in "\t\n\r" for ch in text)


def string_json(data: bytes, alias: str) -> Any:
    """A DT_STRING value as JSON: plain text when it is text, else `{"b64": ...}`.

    Aliases ending in `_bytes` always get b64: that is the convention Serving
    uses for its outputs, and clients of image signatures expect it.
    """
    if alias.endswith("_bytes") or not is_text(data):
        return b64(data)
    return data.decode("utf-8")


def is_array(value: Any) -> bool:
    """A numpy array; only looked for when numpy is loaded, since no array exists before."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def array_json(array: np.ndarray, alias: str) -> Any:
    """A numpy array as a nested JSON list (bytes as text or b64, floats as floats)."""
    if array.dtype.kind in "SO":
        flat = [string_json(v if isinstance(v, bytes) else str(v).encode("utf-8"), alias) for v in array.ravel()]
        return nest(flat, array.shape)
    if array.dtype.kind == "c":
        raise InvalidRequest(f"input '{alias}': complex values have no JSON form in TensorFlow Serving's REST API")
    return array.tolist()


def sample_tensor_json(
    tensor: TensorView,
    *,
    batch: int = 1,
    seed: int = 0,
    features: list[FeatureSpec] | None = None,
    example_bytes: Any = None,
    image: bool | None = None,
) -> Any:
    """A sample value for one signature input, with its batch dimension.

    String inputs that feed a parse op get serialized tf.Examples (b64),
    built by `example_bytes(example_object) -> bytes`; image inputs (`image`
    True: recorded in the model by image-input; None: the alias mentions an
    image) get a tiny PNG; other strings get readable text.
    """
    shape, flat = sample_json_values(tensor, batch=batch, seed=seed, max_elements=MAX_JSON_SAMPLE_ELEMENTS)
    if tensor.dtype != "DT_STRING":
        return nest(flat, shape)
    count = len(flat)
    if features is not None and example_bytes is not None:
        items = [b64(example_bytes(sample_example(features, index=i, seed=seed))) for i in range(count)]
    elif image or (image is None and "image" in tensor.alias.lower()):
        items = [b64(tiny_png(seed=seed + i)) for i in range(count)]
    else:
        items = [string_json(v, tensor.alias) for v in flat]
    return nest(items, shape)


# ---- values given by the user ----


def parse_input_flags(flags: list[str] | None) -> dict[str, list[str]]:
    """`["x=[1,2]", "img=@a.jpg", "img=@b.jpg"]` -> {"x": ["[1,2]"], "img": ["@a.jpg", "@b.jpg"]}."""
    specs: dict[str, list[str]] = {}
    for flag in flags or []:
        alias, sep, value = flag.partition("=")
        if not sep or not alias:
            raise InvalidRequest(f"--input '{flag}' is not ALIAS=VALUE", hint="for example --input x=[[1.0,2.0]]")
        specs.setdefault(alias.strip(), []).append(value)
    return specs


def read_value(spec: str, alias: str, dtype: str | None) -> Any:
    """One `--input` VALUE as a JSON value: a JSON literal, @file.json, @file.npy, or @file (bytes, b64).

    `dtype` None means a tf.Example feature (any kind). A VALUE that is not
    JSON is taken as plain text for string inputs.
    """
    stringy = dtype in (None, "DT_STRING")
    if spec.startswith("@"):
        path = Path(spec[1:]).expanduser()
        data = read_user_file(path, what=f"the file of input '{alias}'", limit=BODY_LIMIT, error=InvalidRequest)
        suffix = path.suffix.lower()
        if suffix == ".json":
            try:
                return json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise InvalidRequest(f"input '{alias}': {path} is not valid JSON: {error}") from error
            except RecursionError as error:
                raise InvalidRequest(f"input '{alias}': {path} is JSON nested too deeply") from error
        if suffix == ".npy":
            import numpy as np

            try:
                array = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError) as error:
                raise InvalidRequest(f"input '{alias}': {path} is not a readable .npy file: {error}") from error
            return array_json(array, alias)
        if stringy:
            return b64(data)
        raise InvalidRequest(
            f"input '{alias}' is {dtype}: @{path} must be a .json or .npy file",
            hint='raw files are sent as {"b64": ...} to string inputs only',
        )
    try:
        return json.loads(spec)
    except RecursionError as error:
        raise InvalidRequest(f"input '{alias}': the value is JSON nested too deeply") from error
    except json.JSONDecodeError as error:
        if stringy:
            return spec
        raise InvalidRequest(
            f"input '{alias}' ({dtype}): {spec!r} is not a JSON value",
            hint="use a JSON literal, @file.json or @file.npy",
        ) from error


def given_values(
    values: Mapping[str, Any] | None, specs: Mapping[str, list[str]] | None, dtype_of: Any
) -> dict[str, Any]:
    """User values by name: JSON values, numpy arrays, or `--input` texts (repeated = one instance each)."""
    given: dict[str, Any] = {}
    for name, value in (values or {}).items():
        given[name] = array_json(value, name) if is_array(value) else value
    for name, texts in (specs or {}).items():
        dtype = dtype_of(name)
        items = [read_value(text, name, dtype) for text in texts]
        given[name] = items[0] if len(items) == 1 else items
    return given
