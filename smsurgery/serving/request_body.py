"""The REST body for one signature, as TensorFlow Serving's REST API takes it.

`build_request` makes the body from user values or samples, checked by
Serving's own rules (`rest.py`, `tf_example.py`) before anyone sees it;
`curl_line` posts it. The resulting `BuiltRequest` is also what the gRPC
request (`grpc_requests.py`), the local run (`graph/run.py`) and warmup
records (`warmup.py`) are made from.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from smsurgery.attach.inputs_record import image_inputs
from smsurgery.core.errors import AliasNotFound, InvalidRequest, SignatureNotFound, UnsupportedModel, listing
from smsurgery.core.layout import split_version_suffix
from smsurgery.core.model import (
    DEFAULT_SIGNATURE,
    MetaGraph,
    SavedModelFile,
    SignatureView,
    TensorView,
    read,
    signature_view,
)
from smsurgery.serving.rest import COLUMNAR, EXAMPLES, ROW, dense_shape, json_tensor, parse_predict
from smsurgery.serving.samples import MAX_JSON_SAMPLE_ELEMENTS
from smsurgery.serving.tf_example import (
    FeatureSpec,
    example_bytes,
    example_features,
    examples_signature,
    examples_targets,
    given_values,
    parse_examples,
    sample_example,
    sample_tensor_json,
)

METHODS = ("predict", "classify", "regress")
INLINE_LIMIT = 1000  # bodies up to this many characters go inline into the curl line


@dataclass(frozen=True)
class BuiltRequest:
    """A request for one signature; `body` is the REST body (JSON value, NaN allowed)."""

    model: SavedModelFile
    meta: MetaGraph
    signature: SignatureView
    method: str  # predict | classify | regress
    format: str  # row | columnar | examples
    body: dict[str, Any]
    model_name: str
    version: int | None  # only when the user asked for a version
    features: tuple[FeatureSpec, ...] | None = None
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)

    def lookup(self, name: str) -> SignatureView | None:
        return signature_lookup(self.meta)(name)


def signature_lookup(meta: MetaGraph) -> Any:
    """Signatures by key, as Serving sees the map (the init op entry included)."""

    def lookup(name: str) -> SignatureView | None:
        if name not in meta.skim.signature_def:
            return None
        return signature_view(name, meta.skim.signature_def[name])

    return lookup


def pick_signature(meta: MetaGraph, key: str | None) -> SignatureView:
    """`key`, else `serving_default`, else the only signature."""
    if key is not None:
        return meta.signature(key)
    keys = meta.signature_keys()
    if DEFAULT_SIGNATURE in keys:
        return meta.signature(DEFAULT_SIGNATURE)
    if len(keys) == 1:
        return meta.signature(keys[0])
    raise SignatureNotFound(
        f"{meta.model.ref} has no '{DEFAULT_SIGNATURE}' signature; choose one with --signature",
        hint=f"it has: {listing(keys)}",
    )


def resolve_method(signature: SignatureView, method: str | None) -> str:
    if method is None:
        return signature.method if signature.method in METHODS else "predict"
    if method not in METHODS:
        raise InvalidRequest(f"unknown method '{method}'", hint=f"choose one of: {listing(METHODS)}")
    return method


# ---- the REST body ----


def _with_batch(value: Any, tensor: TensorView, fmt: str) -> Any:
    """Add the batch dimension to a single instance: rank one short of the declared rank, or a scalar in rows."""
    rank = len(dense_shape(value))
    shape = tensor.shape
    if shape and shape[0] == -1 and rank == len(shape) - 1:
        return [value]
    if fmt == ROW and rank == 0:
        return [value]
    return value


def _sample_value(
    meta: MetaGraph, tensor: TensorView, fmt: str, batch: int, seed: int, images: frozenset[str] = frozenset()
) -> Any:
    """A sample for one input; a declared scalar gets `batch` instances in row format, as Serving allows."""
    view = dataclasses.replace(tensor, shape=(-1,)) if fmt == ROW and tensor.shape == () else tensor
    features = example_features(meta, tensor.name or "") if tensor.dtype == "DT_STRING" else None
    image = True if tensor.alias in images else None
    return sample_tensor_json(view, batch=batch, seed=seed, features=features, example_bytes=example_bytes, image=image)


def _check_inputs(signature: SignatureView, given: dict[str, Any], rest: bool) -> None:
    for tensor in signature.inputs:
        if tensor.name is None:
            raise UnsupportedModel(
                f"input '{tensor.alias}' of signature '{signature.key}' is a {tensor.encoding} tensor: "
                "TensorFlow Serving feeds dense tensors only"
            )
    if rest and not signature.inputs:
        raise InvalidRequest(
            f"signature '{signature.key}' has no inputs: TensorFlow Serving's REST API refuses it "
            f'("Failed to get input map for signature: {signature.key}")',
            hint="send it over gRPC (--grpc), which accepts an empty inputs map",
        )
    for name in given:
        signature.input(name)  # AliasNotFound lists the aliases


def _shape_note(tensor: TensorView, shape: tuple[int, ...]) -> str | None:
    """A warning when a value cannot fit the declared shape (Serving sends it anyway; a scalar is exempt)."""
    declared = tensor.shape
    if not declared:
        return None
    if len(shape) == len(declared) and all(d < 0 or d == g for d, g in zip(declared, shape, strict=True)):
        return None
    return (
        f"input '{tensor.alias}' has shape {list(shape)} but the signature declares {list(declared)}; "
        "Serving sends it as is and the model may refuse it"
    )


def _input_values(
    meta: MetaGraph, signature: SignatureView, fmt: str, given: dict[str, Any], batch: int, seed: int
) -> tuple[dict[str, Any], list[str]]:
    """Each input's whole value (given or sampled), checked by Serving's JSON rules."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    images = image_inputs(meta.model.path, signature.key)  # recorded by image-input
    for tensor in signature.inputs:
        if tensor.alias in given:
            value = _with_batch(given[tensor.alias], tensor, fmt)
        else:
            value = _sample_value(meta, tensor, fmt, batch, seed, images)
        try:
            shape = json_tensor(value, tensor.dtype).shape
        except InvalidRequest as error:
            declared = "unknown rank" if tensor.shape is None else list(tensor.shape)
            raise InvalidRequest(
                f"input '{tensor.alias}' ({tensor.dtype}, shape {declared}): {error.message}"
            ) from error
        note = _shape_note(tensor, shape) if tensor.alias in given else None
        if note:
            notes.append(note)
        values[tensor.alias] = value
    return values, notes


def _predict_body(signature: SignatureView, fmt: str, values: dict[str, Any]) -> dict[str, Any]:
    if fmt == COLUMNAR:
        return {"signature_name": signature.key, "inputs": values}
    sizes = {alias: len(value) if isinstance(value, list) else None for alias, value in values.items()}
    if len(set(sizes.values())) > 1 or None in sizes.values():
        shown = ", ".join(f"{alias}: {'scalar' if n is None else n}" for alias, n in sizes.items())
        raise InvalidRequest(
            f"row format needs the same dimension 0 in every input of '{signature.key}' ({shown})",
            hint="use --format columnar, where dimension 0 may differ",
        )
    count = next(iter(sizes.values()), 0) or 0
    if values and count == 0:
        raise InvalidRequest("row format needs at least one instance (dimension 0 is 0)", hint="use --format columnar")
    instances = [{alias: values[alias][i] for alias in values} for i in range(count)]
    return {"signature_name": signature.key, "instances": instances}


def _as_float_feature(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_float_feature(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _examples_body(
    meta: MetaGraph, signature: SignatureView, method: str, given: dict[str, Any], batch: int, seed: int
) -> tuple[dict[str, Any], tuple[FeatureSpec, ...] | None, tuple[str, ...]]:
    try:
        examples_signature(signature_lookup(meta), signature.key, method)
        input_name, _ = examples_targets(signature, method)
    except InvalidRequest as error:
        refusal = f"TensorFlow Serving's {method} API refuses signature '{signature.key}'"
        raise InvalidRequest(f"{refusal}: {error}") from error
    features = example_features(meta, input_name)
    notes: list[str] = []
    dtype = signature.input("inputs").dtype
    if features is None and dtype != "DT_STRING" and "inputs" not in given:
        raise InvalidRequest(
            f"signature '{signature.key}' takes {dtype} 'inputs', not serialized tf.Example strings: "
            f"TensorFlow Serving's {method} API feeds it tf.Examples",
            hint="call it with --method predict",
        )
    if features is None and "inputs" not in given:
        notes.append(
            f"could not find which tf.Example features signature '{signature.key}' parses; "
            "pass them with --input FEATURE=VALUE"
        )
    known = {f.name: f for f in features or []}
    examples = [sample_example(list(known.values()), index=i, seed=seed) for i in range(batch)]
    for name, value in given.items():
        if name == "inputs":
            examples = value if isinstance(value, list) else [value]
            continue
        if features is not None and name not in known:
            raise AliasNotFound(
                f"signature '{signature.key}' parses no tf.Example feature '{name}'",
                hint=f"it parses: {listing(known)}; or pass whole examples with --input inputs=@examples.json",
            )
        if name in known and known[name].dtype == "DT_FLOAT":
            value = _as_float_feature(value)
        for example in examples:
            if isinstance(example, dict):
                example[name] = value
    body = {"signature_name": signature.key, "examples": examples}
    try:
        parse_examples(body)
    except InvalidRequest as error:
        raise InvalidRequest(f"the examples for '{signature.key}' would be refused: {error}") from error
    return body, (tuple(features) if features is not None else None), tuple(notes)


def build_request(
    path: str | Path | SavedModelFile,
    *,
    version: int | None = None,
    tags: tuple[str, ...] | list[str] | None = None,
    signature: str | None = None,
    method: str | None = None,
    fmt: str = ROW,
    values: Mapping[str, Any] | None = None,
    specs: Mapping[str, list[str]] | None = None,
    batch: int = 1,
    seed: int = 0,
    rest: bool = True,
    model_name: str | None = None,
) -> BuiltRequest:
    """The request for one signature, checked by Serving's rules; never imports TensorFlow.

    `values` maps an input alias (or, for classify/regress, a tf.Example
    feature, or `inputs` for the whole example list) to a JSON value or numpy
    array holding the whole tensor, batch dimension included; `specs` maps
    the same names to `--input` texts. Inputs not given get samples.
    """
    if fmt not in (ROW, COLUMNAR):
        raise InvalidRequest(f"unknown format '{fmt}'", hint="choose row or columnar")
    if batch < 1:
        raise InvalidRequest(f"--batch must be at least 1 (got {batch})")
    if batch > MAX_JSON_SAMPLE_ELEMENTS:  # every sample holds at least `batch` values
        raise InvalidRequest(f"--batch {batch} is more than {MAX_JSON_SAMPLE_ELEMENTS} samples in one request")
    if model_name is not None and not model_name.strip("/"):
        raise InvalidRequest(f"--model-name {model_name!r} is empty", hint="Serving names models in the URL")
    model = path if isinstance(path, SavedModelFile) else read(path, version)
    meta = model.meta_graph(tags)
    view = pick_signature(meta, signature)
    chosen = resolve_method(view, method)
    asked = _asked_version(path, version, model)
    base = model.ref.base_location  # the URL of a remote base, not its local mirror
    name = model_name or (PurePosixPath(str(base)).name if base is not None else PurePosixPath(model.ref.location).name)
    common = {"model": model, "meta": meta, "signature": view, "method": chosen, "model_name": name, "version": asked}
    if chosen == "predict":
        given = given_values(values, specs, lambda alias: view.input(alias).dtype)
        _check_inputs(view, given, rest)
        values, notes = _input_values(meta, view, fmt, given, batch, seed)
        body = _predict_body(view, fmt, values)
        if rest:
            parse_predict(body, signature_lookup(meta))
        return BuiltRequest(format=fmt, body=body, notes=tuple(notes), **common)

    def feature_dtype(feature: str) -> str | None:
        return view.input("inputs").dtype if feature == "inputs" else None

    given = given_values(values, specs, feature_dtype)
    body, features, notes = _examples_body(meta, view, chosen, given, batch, seed)
    return BuiltRequest(format=EXAMPLES, body=body, features=features, notes=notes, **common)


def _asked_version(path: Any, version: int | None, model: SavedModelFile) -> int | None:
    """The version for the URL: only when the user picked one (BASE@V, --version, a version folder)."""
    if isinstance(path, SavedModelFile) or model.ref.version is None:
        return version
    _, suffix = split_version_suffix(path)
    if version is not None or suffix is not None:
        return model.ref.version
    given = Path(str(path))
    if given.name == "saved_model.pb" or given.name == "saved_model.pbtxt":
        given = given.parent
    if model.ref.origin is not None:  # a remote version named by its own URL
        named = str(path).rstrip("/").removesuffix("/saved_model.pb").removesuffix("/saved_model.pbtxt")
        return model.ref.version if named == model.ref.origin else None
    return model.ref.version if given.resolve() == model.ref.version_dir.resolve() else None


def rest_url(built: BuiltRequest, host: str = "localhost") -> str:
    """`http://HOST:8501/v1/models/NAME[/versions/V]:METHOD`; HOST may carry a scheme and a port."""
    scheme, _, address = host.rpartition("://")
    address = address.rstrip("/")
    if ":" not in address:
        address += ":8501"
    version = f"/versions/{built.version}" if built.version is not None else ""
    return f"{scheme or 'http'}://{address}/v1/models/{built.model_name}{version}:{built.method}"


def curl_line(built: BuiltRequest, host: str = "localhost", body_file: str | None = None) -> str:
    """The curl command that posts the body: inline when short, else `-d @FILE`."""
    text = built.text()
    data = f"@{body_file}" if body_file else (text if len(text) <= INLINE_LIMIT else "@body.json")
    return f"curl -X POST {rest_url(built, host)} -d {shlex.quote(data)}"
