"""Attachment steps of a recipe: image_input, example_input, labels, warmup.

They are not in-memory edits: image, example and labels build new graph
(TensorFlow, `smsurgery.graph`), and warmup writes a file. So a recipe runs
them after its in-memory steps (which is why they must come last in the
file): the in-memory result is published into a staging base inside the
model's base, each attachment but the last publishes into that staging base
too, and the last one publishes into the model's base. One new version
appears per model, whatever the number of steps; the staging base is removed
afterwards (or, after a kill, by the next publish into that base).

Planning stays without TensorFlow: each kind's `plan` runs the pure
`smsurgery.attach.*_plan` check against the model as the in-memory steps
left it, and says what the step would add. A model that already has what
the step attaches (its signature key, or a warmup file) is left alone, so a
second apply is a no-op here too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from smsurgery.core.errors import InvalidEdit
from smsurgery.core.model import MetaGraph, SavedModelFile
from smsurgery.core.registry import kind_registrar
from smsurgery.publishing.target import PublishTarget
from smsurgery.storage.url import is_remote

# What each kind adds when its new_key is not given (those of `smsurgery.attach.*_plan`, which are imported only
# when a step is planned: a recipe of in-memory edits does not pay for them; a test checks they agree).
IMAGE_KEY, LABELS_KEY, WARMUP = "serving_b64", "labels", "tf_serving_warmup_requests"
EXAMPLE_KEYS = {"predict": "predict_examples", "classify": "classify", "regress": "regress"}


@dataclass(frozen=True)
class Planned:
    """What an attachment step would add, and the diff verdict of that addition."""

    details: list[str]
    verdict: str  # compatible (a new signature or file) | breaking (an existing signature changes)
    settled: Attachment | None = None  # the step with the plan's choices written out, for apply to run


@dataclass(frozen=True)
class Attachment:
    """Base of the attachment kinds; `op` is the step's name in a recipe."""

    op: ClassVar[str] = ""

    def options(self) -> dict[str, Any]:
        """The fields given (not None, not False), as the library function's keyword options."""
        skip = {"signature"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip and getattr(self, f.name)}

    def done(self, meta: MetaGraph) -> str | None:
        """Why the model already has what this step attaches (None: it has not)."""
        raise NotImplementedError

    def plan(self, model: SavedModelFile, tags: tuple[str, ...]) -> Planned:
        """Check the step against `model` without TensorFlow; raises the user error a single command would."""
        raise NotImplementedError

    def run(self, path: Path, tags: tuple[str, ...], target: PublishTarget) -> Path | str:
        """Attach to the version at `path`, publish as `target`; the new version's folder (a URL in a bucket)."""
        raise NotImplementedError


def _where(path: str | Path) -> Path | str:
    """A published version's location: a URL stays a string (`Path` folds `s3://` into `s3:/`)."""
    return str(path) if is_remote(str(path)) else Path(path)


ATTACH_TYPES: dict[str, type[Attachment]] = {}  # op -> attachment class, filled by @attach_kind
attach_kind = kind_registrar(ATTACH_TYPES, "attachment")


def _has_key(meta: MetaGraph, key: str) -> str | None:
    return f"has signature '{key}' already" if key in meta.signature_keys() else None


@attach_kind("image_input")
@dataclass(frozen=True)
class ImageInput(Attachment):
    """`smsurgery image-input`: a signature that takes encoded images (`<alias>_bytes`)."""

    signature: str | None = None
    input_alias: str | None = None
    input_name: str | None = None
    size: list[int] | None = None
    channels: int | None = None
    new_key: str | None = None
    keep_original_as: str | None = None
    replace: bool = False
    route: str | None = None
    resize: str | None = None
    preserve_aspect_ratio: bool = False
    scale: str | None = None
    mean: str | None = None
    std: str | None = None
    base64_in_graph: bool = False
    channel_order: str | None = None
    layout: str | None = None
    crop: str | None = None
    resize_shorter: int | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or not all(isinstance(d, int) and d > 0 for d in self.size)):
            raise InvalidEdit(f"'size' must be [HEIGHT, WIDTH], not {self.size!r}")

    def done(self, meta: MetaGraph) -> str | None:
        source = self.signature or "serving_default"
        key = source if self.replace else self.new_key or IMAGE_KEY
        if key != source:
            return _has_key(meta, key)
        if key in meta.signature_keys():  # in place: done once its image input takes bytes
            view = meta.signature(key)
            wanted = self.input_name or ""
            if any(t.dtype == "DT_STRING" and (t.alias == wanted or t.alias.endswith("_bytes")) for t in view.inputs):
                return f"signature '{key}' takes image bytes already"
        return None

    def plan(self, model: SavedModelFile, tags: tuple[str, ...]) -> Planned:
        from smsurgery.attach.image_plan import plan_image_input

        found = plan_image_input(model, self.signature, tags=tags, **self.options())
        spec = found.spec
        moved = f"; the original moves to '{found.keep_original_as}'" if found.keep_original_as else ""
        detail = (
            f"signature '{found.target}' takes '{found.new_alias}' (encoded images, decoded to "
            f"{spec.height}x{spec.width}x{spec.channels} {spec.tf_dtype}) for input '{found.image.alias}' "
            f"of '{found.signature.key}'{moved}"
        )
        in_place = found.target in model.meta_graph(tags).signature_keys()
        return Planned([detail], "breaking" if in_place else "compatible")

    def run(self, path: Path, tags: tuple[str, ...], target: PublishTarget) -> Path | str:
        from smsurgery.graph.image import add_image_input

        return _where(add_image_input(path, self.signature, tags=tags, target=target, **self.options()).path)


@attach_kind("example_input")
@dataclass(frozen=True)
class ExampleInput(Attachment):
    """`smsurgery example-input`: a signature that parses serialized tf.Examples (Classify, Regress, Predict)."""

    signature: str | None = None
    new_key: str | None = None
    method: str = "predict"
    output: str | None = None
    spec_file: str | None = None
    route: str | None = None
    image_feature: str | None = None

    def done(self, meta: MetaGraph) -> str | None:
        return _has_key(meta, self.new_key or EXAMPLE_KEYS.get(self.method, ""))

    def plan(self, model: SavedModelFile, tags: tuple[str, ...]) -> Planned:
        from smsurgery.attach.example_plan import plan_example_input

        found = plan_example_input(model, self.signature, tags=tags, **self.options())
        features = ", ".join(f.name for f in found.features)
        detail = (
            f"signature '{found.target}' ({found.method}) parses tf.Examples (features {features}) "
            f"for '{found.signature.key}'"
        )
        return Planned([detail], "compatible")

    def run(self, path: Path, tags: tuple[str, ...], target: PublishTarget) -> Path | str:
        from smsurgery.graph.example import add_example_input

        return _where(add_example_input(path, self.signature, tags=tags, target=target, **self.options()).path)


@attach_kind("labels")
@dataclass(frozen=True)
class Labels(Attachment):
    """`smsurgery labels`: a signature giving `classes` (from a labels file) and `scores` after a score output."""

    labels_file: str
    signature: str | None = None
    output: str | None = None
    top_k: int | None = None
    new_key: str | None = None
    route: str | None = None

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in super().options().items() if k != "labels_file"}

    def done(self, meta: MetaGraph) -> str | None:
        return _has_key(meta, self.new_key or LABELS_KEY)

    def plan(self, model: SavedModelFile, tags: tuple[str, ...]) -> Planned:
        from smsurgery.attach.labels_plan import plan_labels

        found = plan_labels(model, self.labels_file, self.signature, tags=tags, **self.options())
        detail = (
            f"signature '{found.target}' gives the top {found.top_k} of {len(found.labels)} classes "
            f"of output '{found.output}' of '{found.signature.key}' as classes and scores"
        )
        return Planned([detail], "compatible")

    def run(self, path: Path, tags: tuple[str, ...], target: PublishTarget) -> Path | str:
        from smsurgery.graph.labels import add_labels

        report = add_labels(path, self.labels_file, self.signature, tags=tags, target=target, **self.options())
        return _where(report.path)


@attach_kind("warmup")
@dataclass(frozen=True)
class Warmup(Attachment):
    """`smsurgery warmup`: assets.extra/tf_serving_warmup_requests with `count` sample requests."""

    signature: str | None = None
    method: str | None = None
    batch: int = 1
    count: int = 1

    def done(self, meta: MetaGraph) -> str | None:
        path = meta.model.path / "assets.extra" / WARMUP
        return "has a warmup file already" if path.is_file() else None

    def _build(self, model: SavedModelFile | Path, tags: tuple[str, ...]) -> Any:
        from smsurgery.serving.request_body import build_request
        from smsurgery.serving.warmup import warmup_bytes

        built = build_request(model, tags=tags, signature=self.signature, method=self.method, batch=self.batch)
        warmup_bytes(built, self.count)  # refuses a bad count
        return built

    def plan(self, model: SavedModelFile, tags: tuple[str, ...]) -> Planned:
        built = self._build(model, tags)
        detail = f"{WARMUP}: {self.count} {built.method} record(s) for signature '{built.signature.key}'"
        # The signature and method chosen now: the attachments before this one add signatures, and the only
        # signature of the plan could be one of several when the step runs.
        return Planned([detail], "compatible", replace(self, signature=built.signature.key, method=built.method))

    def run(self, path: Path, tags: tuple[str, ...], target: PublishTarget) -> Path | str:
        from smsurgery.serving.warmup import publish_warmup

        built = self._build(path, tags)
        if target.verify:  # as `smsurgery warmup` does: Serving refuses a version whose warmup request fails
            from smsurgery.graph.run import run_request

            run_request(built)
        return _where(publish_warmup(built, self.count, target).path)
