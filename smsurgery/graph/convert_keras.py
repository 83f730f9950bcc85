"""The Keras route of `convert`: a Keras 3 model as a SavedModel with one signature.

The signature's aliases are the model's own names: input names (the
`keras.Input(name=...)`, or the keys of a dict input) and, for outputs, the
keys of a dict output or else the name of the layer that makes each output
(`probs`, not Keras' `output_0`). A `tf.function` calling the model returns
that dict and is saved with `tf.saved_model.save` under the one signature key
the user asked for; Keras' own `model.export` would add `serve` beside
`serving_default`. Split from `convert.py` to keep both modules small.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core import formats, protos
from smsurgery.core.errors import InvalidEdit, UnsupportedModel, listing
from smsurgery.core.formats import SourceFormat
from smsurgery.core.model import METHOD_PREFIX, SignatureView
from smsurgery.graph.convert_source import Candidate, Candidates
from smsurgery.graph.export import write_saved
from smsurgery.graph.session import first_line, import_tf

_KERAS_SUFFIX = {formats.KERAS_V3: ".keras", formats.KERAS_H5: ".h5"}
H5_WAY_OUT = (
    "load it with tf_keras (pip install tf-keras; tf_keras.models.load_model(PATH)) and save it as .keras "
    "to convert that, or write a SavedModel with tf_keras' model.export(DIR)"
)
WEIGHTS_WAY_OUT = (
    "it holds weights only: build the model in code, call model.load_weights(PATH), and save it as .keras "
    "(or write a SavedModel with model.export(DIR))"
)
KERAS_WAY_OUT = "if it uses custom layers, load it where they are defined and write a SavedModel with model.export(DIR)"


class KerasSource:
    """A Keras 3 model; its own input and output names become the signature's aliases."""

    def __init__(self, fmt: SourceFormat, model: Any) -> None:
        self.fmt, self.model = fmt, model
        inputs, outputs = _structures(model, fmt)
        self.in_kind, self.in_aliases, self.in_tensors = _keras_inputs(inputs, fmt)
        self.out_kind, self.out_keys, self.out_aliases, self.out_tensors = _keras_outputs(outputs)
        self.key = "serving_default"

    def close(self) -> None:
        pass

    def candidates(self) -> Candidates:
        tf = import_tf()
        pairs = zip(self.in_aliases, self.in_tensors, strict=True)
        ins = tuple(_keras_candidate(tf, a, t, "keras.Input") for a, t in pairs)
        pairs = zip(self.out_aliases, self.out_tensors, strict=True)
        outs = tuple(_keras_candidate(tf, a, t, "keras output") for a, t in pairs)
        return Candidates(self.fmt.path, self.fmt, ins, outs)

    def plan(
        self,
        in_pairs: list[tuple[str, str]],
        out_pairs: list[tuple[str, str]],
        key: str,
        method: str,
        tags: tuple[str, ...],
    ) -> None:
        if in_pairs or out_pairs:
            raise InvalidEdit(
                "--inputs/--outputs do not apply to Keras files",
                hint=f"the signature uses the model's own names: inputs {listing(self.in_aliases)}, "
                f"outputs {listing(self.out_aliases)}",
            )
        if method != METHOD_PREFIX + "predict" or tags != ("serve",):
            raise InvalidEdit(
                "Keras files convert to a predict signature under tag set [serve] only",
                hint="tf.saved_model.save writes no other method or tag set",
            )
        self.key = key

    def call(self, values: dict[str, Any]) -> dict[str, Any]:
        ordered = [values[a] for a in self.in_aliases]
        if self.in_kind == "dict":
            result = self.model(dict(zip(self.in_aliases, ordered, strict=True)), training=False)
        else:
            result = self.model(ordered if self.in_kind == "list" else ordered[0], training=False)
        if self.out_kind == "single":
            result = [result]
        return {alias: result[key] for alias, key in zip(self.out_aliases, self.out_keys, strict=True)}

    def export(self, path: Path, tags: tuple[str, ...]) -> None:
        tf = import_tf()
        specs = [tf.TensorSpec(t.shape, t.dtype, name=a) for a, t in zip(self.in_aliases, self.in_tensors, strict=True)]

        def serve(*args: Any) -> dict[str, Any]:
            return self.call(dict(zip(self.in_aliases, args, strict=True)))

        concrete = tf.function(serve, input_signature=specs, autograph=False).get_concrete_function()
        root = tf.Module()
        root.model_variables = list(concrete.variables)
        root.resources = _keras_resources(tf, self.model)
        write_saved(root, path, signatures={self.key: concrete})

    def run(self, view: SignatureView, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {alias: np.asarray(value) for alias, value in self.call(feeds).items()}


def load_keras(fmt: SourceFormat) -> KerasSource:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tf()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UnsupportedModel(f"Keras runs on {keras.backend.backend()}", hint="set KERAS_BACKEND=tensorflow")
    suffix = _KERAS_SUFFIX[fmt.kind]
    path = fmt.path
    with contextlib.ExitStack() as stack:
        if path.suffix.lower() not in (suffix, ".hdf5" if suffix == ".h5" else suffix):
            # Keras picks its reader by suffix. A temporary folder only then: a SIGKILL would leave it behind.
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="smsurgery-keras-"))
            path = Path(tmp) / f"model{suffix}"
            path.symlink_to(fmt.path.absolute())
        try:
            model = keras.saving.load_model(str(path), compile=False)
        except Exception as error:
            reason = first_line(error).replace(str(path), fmt.path.name).split(". ")[0].rstrip(".")
            raise UnsupportedModel(
                f"Keras 3 cannot read {fmt.path} ({fmt.description}): {reason}", hint=_way_out(fmt, reason)
            ) from error
    return KerasSource(fmt, model)


def _way_out(fmt: SourceFormat, reason: str) -> str:
    if fmt.kind != formats.KERAS_H5:
        return KERAS_WAY_OUT
    if "no model config" in reason.lower():
        return WEIGHTS_WAY_OUT
    return H5_WAY_OUT


def _structures(model: Any, fmt: SourceFormat) -> tuple[Any, Any]:
    """The model's input and output structures (a tensor, a list, or a dict keyed by the model's names)."""
    import keras

    try:
        if isinstance(model, keras.Sequential):
            return model.inputs[0], model.outputs[0]
        return model.input, model.output
    except (AttributeError, ValueError, TypeError, IndexError) as error:
        raise UnsupportedModel(
            f"{fmt.path} holds a {type(model).__name__} model without named inputs and outputs (a subclassed model?)",
            hint="export it with model.export(DIR) in the code that defines it",
        ) from error


def _keras_inputs(struct: Any, fmt: SourceFormat) -> tuple[str, list[str], list[Any]]:
    if isinstance(struct, dict):
        kind, aliases, tensors = "dict", [str(k) for k in struct], list(struct.values())
    elif isinstance(struct, (list, tuple)):
        kind, tensors = "list", list(struct)
        aliases = [t.name for t in tensors]
    else:
        kind, aliases, tensors = "single", [struct.name], [struct]
    for alias, tensor in zip(aliases, tensors, strict=True):
        if not hasattr(tensor, "shape") or getattr(tensor, "sparse", False) or getattr(tensor, "ragged", False):
            raise UnsupportedModel(
                f"input '{alias}' of {fmt.path} is not a dense tensor",
                hint="export it with model.export(DIR) and an input_signature",
            )
    return kind, aliases, tensors


def _keras_outputs(struct: Any) -> tuple[str, list[Any], list[str], list[Any]]:
    """Keys of a dict output; else the name of the layer that makes each output (deduplicated)."""
    if isinstance(struct, dict):
        return "dict", list(struct), [str(k) for k in struct], list(struct.values())
    kind, tensors = ("list", list(struct)) if isinstance(struct, (list, tuple)) else ("single", [struct])
    names: list[str] = []
    for index, tensor in enumerate(tensors):
        history = getattr(tensor, "_keras_history", None)
        name = getattr(getattr(history, "operation", None), "name", None) or f"output_{index}"
        names.append(name if name not in names else f"{name}_{index}")
    return kind, list(range(len(names))), names, tensors


def _keras_candidate(tf: Any, alias: str, tensor: Any, op: str) -> Candidate:
    shape = tuple(-1 if d is None else int(d) for d in tensor.shape)
    return Candidate(alias, op, protos.dtype_name(tf.as_dtype(tensor.dtype).as_datatype_enum), shape)


def _keras_resources(tf: Any, model: Any) -> list[Any]:
    """Lookup tables of preprocessing layers: a saved function may only capture tracked resources."""
    from tensorflow.saved_model.experimental import TrackableResource

    try:
        return [t for t in tf.train.TrackableView(model).descendants() if isinstance(t, TrackableResource)]
    except TypeError:
        return []
