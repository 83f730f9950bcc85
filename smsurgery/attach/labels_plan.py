"""Check a labels request (top-k + label lookup after a score output), without TensorFlow.

Clients want class names, models return score arrays. The new signature
returns `classes` (DT_STRING, the labels of the top k scores) and `scores`
(DT_FLOAT, those scores, best first), the output names Serving's Classify
API reads (classifier.cc), so with `example-input --method classify` it
answers `[[label, score], ...]`. The labels file is UTF-8, one label per
line, as many lines as the score output has classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smsurgery.attach.example_plan import FLOATS
from smsurgery.attach.image_plan import _check_name, _route
from smsurgery.core.errors import AliasNotFound, InvalidEdit, NameCollision, PathNotFound, UnsupportedModel, listing
from smsurgery.core.model import MetaGraph, SavedModelFile, SignatureView, read
from smsurgery.publishing.new_version import target_base

DEFAULT_KEY = "labels"
ASSET_NAME = "labels.txt"


@dataclass(frozen=True)
class LabelsPlan:
    model: SavedModelFile
    meta: MetaGraph
    signature: SignatureView
    output: str
    labels: tuple[str, ...]
    labels_bytes: bytes
    top_k: int
    target: str
    base: Path | str  # a URL string for a remote base
    route: str


def read_labels(path: str | Path) -> tuple[tuple[str, ...], bytes]:
    """(labels, the file's bytes); refuses a missing, empty or non-UTF-8 file."""
    file = Path(path)
    if not file.is_file():
        raise PathNotFound(f"no labels file {file}")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEdit(f"labels file {file} is not UTF-8 (byte {error.start})") from error
    labels = text.removeprefix("\ufeff").splitlines()
    while labels and not labels[-1].strip():
        labels.pop()
    if not labels:
        raise InvalidEdit(f"labels file {file} is empty", hint="one label per line, as many as the scores")
    return tuple(labels), data


def _score_output(signature: SignatureView, alias: str | None) -> tuple[str, int]:
    if alias is None:
        floats = [t for t in signature.outputs if t.dtype in FLOATS]
        if len(floats) != 1:
            raise AliasNotFound(
                f"signature '{signature.key}' has {len(floats)} float outputs; labels go after one",
                hint=f"choose it with --output: {listing(t.alias for t in signature.outputs)}",
            )
        alias = floats[0].alias
    tensor = signature.output(alias)
    shape = tensor.shape
    if tensor.dtype not in FLOATS or shape is None or len(shape) != 2 or shape[1] < 1:
        raise UnsupportedModel(
            f"output '{alias}' is {tensor.dtype} {list(shape) if shape is not None else 'unknown rank'}; "
            "labels need float scores [batch, classes] with a known class count"
        )
    return alias, shape[1]


def plan_labels(
    path: str | Path | SavedModelFile,
    labels_file: str | Path,
    signature: str | None = None,
    *,
    tags: tuple[str, ...] | None = None,
    out_base: str | Path | None = None,
    output: str | None = None,
    top_k: int | None = None,
    new_key: str | None = None,
    route: str | None = None,
) -> LabelsPlan:
    """Check the request against the model and the labels file; nothing written."""
    model = path if isinstance(path, SavedModelFile) else read(path)  # a model in memory: a recipe's draft
    meta = model.meta_graph(tags)
    view = meta.signature(signature or "serving_default")
    alias, classes = _score_output(view, output)
    labels, data = read_labels(labels_file)
    if len(labels) != classes:
        raise InvalidEdit(
            f"labels file {labels_file} has {len(labels)} lines; output '{alias}' scores {classes} classes",
            hint="one label per line, in class order",
        )
    k = classes if top_k is None else int(top_k)
    if not 1 <= k <= classes:
        raise InvalidEdit(f"--top-k {k}: must be between 1 and the {classes} classes")
    key = _check_name(new_key or DEFAULT_KEY, "signature key")
    if key in meta.signature_keys():
        raise NameCollision(f"signature '{key}' already exists in {model.ref}", hint="choose another key with --as")
    return LabelsPlan(
        model=model, meta=meta, signature=view, output=alias, labels=labels, labels_bytes=data, top_k=k,
        target=key, base=target_base(model, out_base), route=_route(meta, route),
    )  # fmt: skip
