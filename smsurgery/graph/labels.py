"""Attach top-k and a label lookup after a score output: `classes` (DT_STRING) and `scores`.

The postprocessor (`TopLabels`) runs `tf.math.top_k` on the scores and
gathers the labels (a constant string tensor, on the CPU); the attach
interface builds it on both routes and verifies it against the same steps
done eagerly. The labels file is also written to the new version's
`assets/labels.txt`, so the version carries the file its answers came from.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.attach.labels_plan import ASSET_NAME, LabelsPlan, plan_labels
from smsurgery.graph.attach import AttachPlan, publish_attachment
from smsurgery.publishing.target import DEFAULT_TARGET, PublishTarget

SCHEMA = "smsurgery.labels/1"


@dataclass(frozen=True)
class TopLabels:
    source: str
    labels: tuple[str, ...]
    k: int

    def __call__(self, tf: Any, outputs: Mapping[str, Any]) -> dict[str, Any]:
        scores = tf.cast(outputs[self.source], tf.float32)
        top, indices = tf.math.top_k(scores, k=self.k, sorted=True)
        with tf.device("/CPU:0"):
            classes = tf.gather(tf.constant(list(self.labels), tf.string), indices)
        return {"classes": classes, "scores": top}


def attach_plan(plan: LabelsPlan) -> AttachPlan:
    return AttachPlan(
        model=plan.model, meta=plan.meta, signature=plan.signature, target=plan.target, keep_original_as=None,
        replace=False, base=plan.base, route=plan.route, post=TopLabels(plan.output, plan.labels, plan.top_k),
        extra_assets=((ASSET_NAME, plan.labels_bytes),),
    )  # fmt: skip


@dataclass
class LabelsReport:
    """What `add_labels` did; `to_json()` is the `labels --json` schema."""

    source: str
    base: str
    version: int
    path: str
    route: str
    signature: str
    target: str
    output: str
    top_k: int
    classes: int
    asset: str
    signatures: list[str]
    verification: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **self.__dict__}


def add_labels(
    path: str | Path,
    labels_file: str | Path,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    target: PublishTarget = DEFAULT_TARGET,
    **options: Any,
) -> LabelsReport:
    """Publish a new version with a signature giving `classes` and `scores` (top k) after a score output.

    `options` are those of `plan_labels` (output, top_k, new_key, route);
    `target` is where and how the version is published.
    """
    started = time.perf_counter()
    plan = plan_labels(path, labels_file, signature, tags=tags, out_base=target.base, **options)
    attachment = attach_plan(plan)
    result = publish_attachment(attachment, target, started)
    return LabelsReport(
        **result.report_fields(attachment),
        output=plan.output,
        top_k=plan.top_k,
        classes=len(plan.labels),
        asset=f"assets/{ASSET_NAME}",
    )
