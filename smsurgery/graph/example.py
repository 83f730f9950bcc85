"""Add a signature that takes serialized tf.Examples, so Serving's Classify and Regress APIs can call a model.

Keras and TF2 exports only take tensors; Serving's `:classify` and
`:regress` feed serialized `tf.Example`s to one input `inputs`. The
preprocessor (`ExamplePreprocessor`) parses them on the CPU with the plan's
feature spec and casts each feature to its input's dtype; for classify and
regress a postprocessor (`ServingOutputs`) renames the chosen output to
`scores` or `outputs` as DT_FLOAT. The attach interface (`graph.attach`)
builds both into TF1 exports (session route) and TF2 exports (function
route), sets the method name Serving checks, and verifies the result
against the same parsing done eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.attach.example_plan import INPUT_ALIAS, ExampleFeature, ExamplePlan, plan_example_input, sample_values
from smsurgery.attach.image_plan import ImageSpec
from smsurgery.graph.attach import AttachPlan, publish_attachment
from smsurgery.graph.image import decode_images, sample_jpeg
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget

SCHEMA = "smsurgery.example-input/1"
SAMPLE_EXAMPLES = 3


@dataclass(frozen=True)
class ExamplePreprocessor:
    """Serialized tf.Examples in `inputs` ([N] strings) -> every input of the original signature."""

    features: tuple[ExampleFeature, ...]
    image_inputs: tuple[str, ...] = ()

    @property
    def replaces(self) -> tuple[str, ...]:
        return tuple(f.alias for f in self.features)

    @property
    def new_inputs(self) -> dict[str, tuple[str, tuple[int | None, ...]]]:
        return {INPUT_ALIAS: ("string", (None,))}

    def __call__(self, tf: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
        spec = {}
        for feature in self.features:
            dtype = tf.as_dtype(feature.dtype)
            if feature.image is not None:
                spec[feature.name] = tf.io.FixedLenFeature([], tf.string)
            elif feature.var_len:
                spec[feature.name] = tf.io.VarLenFeature(dtype)
            else:
                spec[feature.name] = tf.io.FixedLenFeature(list(feature.shape), dtype)
        with tf.device("/CPU:0"):
            parsed = tf.io.parse_example(inputs[INPUT_ALIAS], spec, name="parse_examples")
            values = {}
            for feature in self.features:
                value = parsed[feature.name]
                if feature.image is not None:
                    values[feature.alias] = decode_images(tf, value, feature.image)
                    continue
                if feature.var_len:
                    value = tf.sparse.to_dense(value)
                if feature.input_dtype != feature.dtype:
                    value = tf.cast(value, tf.as_dtype(feature.input_dtype))
                values[feature.alias] = value
        return values

    def sample(self, tf: Any) -> dict[str, np.ndarray]:
        return {INPUT_ALIAS: np.array(serialized_samples(tf, self.features, SAMPLE_EXAMPLES), dtype=object)}


def serialized_samples(tf: Any, features: tuple[ExampleFeature, ...], count: int) -> list[bytes]:
    """`count` serialized tf.Examples with a value for every feature."""
    examples = []
    for index in range(count):
        proto = tf.train.Example()
        for feature in features:
            values = sample_values(feature, index) if feature.image is None else [_sample_image(tf, feature.image)]
            entry = proto.features.feature[feature.name]
            target = {"float32": entry.float_list, "int64": entry.int64_list, "string": entry.bytes_list}
            target[feature.dtype].value.extend(values)
        examples.append(proto.SerializeToString())
    return examples


def _sample_image(tf: Any, spec: ImageSpec) -> bytes:
    return sample_jpeg(tf, spec.height * 3 // 2 + 5, spec.width * 2 // 3 + 7, spec.channels)


@dataclass(frozen=True)
class ServingOutputs:
    """The chosen output under Serving's role name (`scores` or `outputs`), as DT_FLOAT."""

    source: str
    role: str
    classes: str | None = None  # a DT_STRING output passed through as `classes`

    def __call__(self, tf: Any, outputs: Mapping[str, Any]) -> dict[str, Any]:
        value = outputs[self.source]
        result = {self.role: value if value.dtype == tf.float32 else tf.cast(value, tf.float32)}
        if self.classes is not None:
            result["classes"] = outputs[self.classes]
        return result


def attach_plan(plan: ExamplePlan) -> AttachPlan:
    role = {"classify": "scores", "regress": "outputs"}.get(plan.method)
    return AttachPlan(
        model=plan.model, meta=plan.meta, signature=plan.signature, target=plan.target, keep_original_as=None,
        replace=False, base=plan.base, route=plan.route, pre=ExamplePreprocessor(plan.features),
        post=ServingOutputs(plan.output, role, plan.classes) if role and plan.output else None, any_batch=True,
        method_name=plan.method_name,
    )  # fmt: skip


@dataclass
class ExampleInputReport:
    """What `add_example_input` did; `to_json()` is the `example-input --json` schema."""

    source: str
    base: str
    version: int
    path: str
    route: str
    signature: str
    target: str
    method: str
    method_name: str
    features: list[dict[str, Any]]
    outputs: list[str]
    signatures: list[str]
    verification: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **self.__dict__}


def add_example_input(
    path: str | Path,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    target: PublishTarget = DEFAULT_TARGET,
    **options: Any,
) -> ExampleInputReport:
    """Publish a new version with a signature that parses serialized tf.Examples (`inputs`).

    `options` are those of `plan_example_input` (new_key,
    method, output, spec_file, route, image_feature, image_options); `target`
    is where and how the version is published. Every bad input is refused
    before TensorFlow starts.
    """
    started = time.perf_counter()
    plan = plan_example_input(path, signature, tags=tags, out_base=target.base, **options)
    attachment = attach_plan(plan)
    result = publish_attachment(attachment, target, started)
    role = {"classify": ["scores"] + (["classes"] if plan.classes else []), "regress": ["outputs"]}.get(plan.method)
    return ExampleInputReport(
        **result.report_fields(attachment),
        method=plan.method,
        method_name=plan.method_name,
        features=[f.to_json() for f in plan.features],
        outputs=role or [t.alias for t in plan.signature.outputs],
    )
