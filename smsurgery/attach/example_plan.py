"""Check an example-input request and settle the tf.Example feature spec, without TensorFlow.

Serving's Classify and Regress APIs feed a signature serialized `tf.Example`s
through one input `inputs` (classifier.cc, regressor.cc): classify answers
from outputs `classes` (DT_STRING) and/or `scores` (DT_FLOAT, [batch,
classes]), regress from one output `outputs` (DT_FLOAT, [batch] or [batch,
1]), and the signature's method name must say which. The new signature
parses each example with one feature per original input, named by the
input's alias and derived from its dtype and shape: floats parse as float
lists, integers and bools as int64 lists, strings as bytes lists; a fixed
inner shape is a fixed-length feature (required), one unknown inner
dimension a variable-length feature padded with zeros. A spec file (JSON
or TOML) replaces the derivation and must cover every input.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.attach.image_plan import ImageSpec, _check_name, _route, choose_input, image_spec
from smsurgery.core.errors import AliasNotFound, InvalidEdit, NameCollision, PathNotFound, UnsupportedModel, listing
from smsurgery.core.model import MetaGraph, SavedModelFile, SignatureView, TensorView, read
from smsurgery.publishing.new_version import target_base

METHODS = ("predict", "classify", "regress")
DEFAULT_KEYS = {"predict": "predict_examples", "classify": "classify", "regress": "regress"}
INPUT_ALIAS = "inputs"
FLOATS = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_BFLOAT16": "bfloat16"}
INTEGERS = {
    "DT_INT8": "int8", "DT_INT16": "int16", "DT_INT32": "int32", "DT_INT64": "int64", "DT_UINT8": "uint8",
    "DT_UINT16": "uint16", "DT_UINT32": "uint32", "DT_UINT64": "uint64", "DT_BOOL": "bool",
}  # fmt: skip
PARSE_DTYPES = ("float32", "int64", "string")


@dataclass(frozen=True)
class ExampleFeature:
    """One tf.Example feature and the input it feeds."""

    name: str  # the feature key in each tf.Example
    alias: str  # the original input it feeds
    dtype: str  # parse dtype: float32 | int64 | string
    input_dtype: str  # the input's dtype as TensorFlow names it (the parsed value is cast to it)
    shape: tuple[int, ...]  # per example, fixed-length features
    var_len: bool = False  # a variable-length list, padded with zeros (or b"") to the longest in the batch
    image: ImageSpec | None = None  # an encoded image (bytes), decoded with image-input's steps

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "alias": self.alias, "dtype": self.dtype, "input_dtype": self.input_dtype,
            "shape": list(self.shape), "var_len": self.var_len, "image": self.image is not None,
        }  # fmt: skip


@dataclass(frozen=True)
class ExamplePlan:
    model: SavedModelFile
    meta: MetaGraph
    signature: SignatureView
    method: str
    target: str
    features: tuple[ExampleFeature, ...]
    output: str | None  # classify/regress: the original output that becomes scores/outputs
    base: Path | str  # a URL string for a remote base
    route: str
    classes: str | None = None  # classify: a DT_STRING output passed through as `classes` (e.g. from `labels`)

    @property
    def method_name(self) -> str:
        return f"tensorflow/serving/{self.method}"


def _input_dtype(tensor: TensorView) -> tuple[str, str]:
    """(parse dtype, input dtype) of one input."""
    if tensor.dtype in FLOATS:
        return "float32", FLOATS[tensor.dtype]
    if tensor.dtype in INTEGERS:
        return "int64", INTEGERS[tensor.dtype]
    if tensor.dtype == "DT_STRING":
        return "string", "string"
    raise UnsupportedModel(f"input '{tensor.alias}' is {tensor.dtype}; tf.Example features hold floats, ints, bytes")


def derive_feature(tensor: TensorView) -> ExampleFeature:
    """The feature for one input, from its dtype and shape (the batch dimension comes first)."""
    if tensor.name is None or tensor.shape is None or len(tensor.shape) == 0:
        what = "a composite tensor" if tensor.name is None else "unknown rank" if tensor.shape is None else "a scalar"
        raise UnsupportedModel(
            f"input '{tensor.alias}' has {what}; its tf.Example feature cannot be derived",
            hint="describe it in a feature spec file (--spec)",
        )
    parse, dtype = _input_dtype(tensor)
    inner = tuple(tensor.shape[1:])
    if all(d >= 0 for d in inner):
        return ExampleFeature(tensor.alias, tensor.alias, parse, dtype, inner)
    if len(inner) == 1:
        return ExampleFeature(tensor.alias, tensor.alias, parse, dtype, (), var_len=True)
    raise UnsupportedModel(
        f"input '{tensor.alias}' has shape {list(tensor.shape)}: more than one unknown dimension per example",
        hint="describe it in a feature spec file (--spec)",
    )


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PathNotFound(f"no feature spec file {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise InvalidEdit(f"feature spec {path} is not valid {kind}: {error}") from error
    features = data.get("features", data) if isinstance(data, dict) else None
    if not isinstance(features, dict):
        raise InvalidEdit(f"feature spec {path}: expected a table of input alias -> feature")
    return features


def _spec_feature(tensor: TensorView, entry: Any, path: Path) -> ExampleFeature:
    if not isinstance(entry, dict):
        raise InvalidEdit(f"feature spec {path}: '{tensor.alias}' must be a table (name, dtype, shape, var_len)")
    derived_parse, input_dtype = _input_dtype(tensor)
    dtype = str(entry.get("dtype", derived_parse))
    dtype = {"float": "float32", "int": "int64", "bytes": "string"}.get(dtype, dtype)
    if dtype not in PARSE_DTYPES:
        raise InvalidEdit(f"feature spec {path}: dtype '{dtype}' of '{tensor.alias}'", hint="float, int64 or string")
    shape = entry.get("shape", [])
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidEdit(f"feature spec {path}: shape of '{tensor.alias}' must be a list of sizes >= 0")
    name = str(entry.get("name", tensor.alias))
    return ExampleFeature(name, tensor.alias, dtype, input_dtype, tuple(shape), bool(entry.get("var_len", False)))


def feature_spec(signature: SignatureView, spec_file: str | Path | None) -> tuple[ExampleFeature, ...]:
    """One feature per input: derived, or all from the spec file (which must cover every input)."""
    if spec_file is None:
        return tuple(derive_feature(t) for t in signature.inputs)
    path = Path(spec_file)
    entries = _read_spec(path)
    missing = [t.alias for t in signature.inputs if t.alias not in entries]
    if missing:
        raise InvalidEdit(
            f"feature spec {path} does not cover input(s) {listing(missing)} of signature '{signature.key}'",
            hint=f"it covers: {listing(sorted(entries))}",
        )
    features = tuple(_spec_feature(t, entries[t.alias], path) for t in signature.inputs)
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise NameCollision(f"feature spec {path}: two inputs read the same feature: {listing(names)}")
    return features


def _score_output(signature: SignatureView, method: str, alias: str | None) -> str | None:
    if method == "predict":
        if alias is not None:
            raise InvalidEdit("--output chooses the scores of classify or the outputs of regress, not of predict")
        return None
    if alias is None and method == "classify" and _labelled(signature):
        alias = "scores"
    if alias is None:
        if len(signature.outputs) != 1:
            raise AliasNotFound(
                f"signature '{signature.key}' has {len(signature.outputs)} outputs; {method} answers from one",
                hint=f"choose it with --output: {listing(t.alias for t in signature.outputs)}",
            )
        alias = signature.outputs[0].alias
    tensor = signature.output(alias)
    shape = tensor.shape
    if tensor.dtype not in FLOATS:
        raise UnsupportedModel(f"output '{alias}' is {tensor.dtype}; Serving's {method} answers with DT_FLOAT")
    if method == "classify" and (shape is None or len(shape) != 2):
        raise UnsupportedModel(f"output '{alias}' has shape {shape}; classify scores are [batch, classes]")
    if method == "regress" and (shape is None or not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))):
        raise UnsupportedModel(f"output '{alias}' has shape {shape}; regress outputs are [batch] or [batch, 1]")
    return alias


def _labelled(signature: SignatureView) -> bool:
    """Outputs `classes` (DT_STRING) and `scores` (float), as `smsurgery labels` makes them."""
    aliases = {t.alias: t for t in signature.outputs}
    return (
        "classes" in aliases and aliases["classes"].dtype == "DT_STRING"
        and "scores" in aliases and aliases["scores"].dtype in FLOATS
    )  # fmt: skip


def plan_example_input(
    path: str | Path | SavedModelFile,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    out_base: str | Path | None = None,
    new_key: str | None = None,
    method: str = "predict",
    output: str | None = None,
    spec_file: str | Path | None = None,
    route: str | None = None,
    image_feature: str | None = None,
    image_options: dict | None = None,
) -> ExamplePlan:
    """Check the request against the model; every choice settled, nothing written.

    `image_feature` (e.g. `image/encoded`): the image input is fed from this
    bytes feature, decoded with image-input's steps (`image_options`: preset,
    resize, scale, ...; see `image_plan`).
    """
    if method not in METHODS:
        raise InvalidEdit(f"unknown method '{method}'", hint=f"use one of: {listing(METHODS)}")
    model = path if isinstance(path, SavedModelFile) else read(path)  # a model in memory: a recipe's draft
    meta = model.meta_graph(tags)
    view = meta.signature(signature or "serving_default")
    key = _check_name(new_key or DEFAULT_KEYS[method], "signature key")
    if key in meta.signature_keys():
        raise NameCollision(f"signature '{key}' already exists in {model.ref}", hint="choose another key with --as")
    features = feature_spec(view, spec_file)
    if image_feature is not None:
        features = _with_image_feature(view, features, image_feature, image_options or {})
    return ExamplePlan(
        model=model, meta=meta, signature=view, method=method, target=key, features=features,
        output=_score_output(view, method, output), base=target_base(model, out_base), route=_route(meta, route),
        classes="classes" if method == "classify" and _labelled(view) else None,
    )  # fmt: skip


def _with_image_feature(
    view: SignatureView, features: tuple[ExampleFeature, ...], name: str, options: dict
) -> tuple[ExampleFeature, ...]:
    image = choose_input(view, options.pop("input_alias", None))
    spec = image_spec(image, decoding=options)
    feature = ExampleFeature(name, image.alias, "string", spec.tf_dtype, (), image=spec)
    return tuple(feature if f.alias == image.alias else f for f in features)


def sample_values(feature: ExampleFeature, index: int) -> list[Any]:
    """Deterministic values for one feature of example `index` (var-length: index + 1 values)."""
    count = index + 1 if feature.var_len else math.prod(feature.shape)
    if feature.dtype == "string":
        return [f"{feature.name}-{index}-{i}".encode() for i in range(count)]
    if feature.dtype == "int64":
        return [(index + i) % 2 if feature.input_dtype == "bool" else (index * 3 + i) % 7 for i in range(count)]
    return [round(0.25 * index + 0.5 * i - 0.75, 3) for i in range(count)]
