"""`[steps.match]` rules: does this step fit this model (as the earlier steps left it)?

Rules are evaluated on the draft, not on the source, so a recipe can rename
`serve` to `serve_raw` in step 1 and match `serve_raw` in step 2. A model
that a rule does not fit is skipped for that step, which is what makes a
second apply a no-op: `signature = "serve"` no longer matches once `serve`
was renamed. Every rule's value is checked when the recipe is read
(`normalize`), so a typo in a dtype or shape pattern fails before any model
is read instead of silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from smsurgery.core.errors import InvalidEdit, listing
from smsurgery.core.model import MetaGraph
from smsurgery.core.protos import dtype_numbers

MATCH_RULES = {
    "signature": "the model has this signature key",
    "no_signature": "the model does not have this signature key",
    "alias": "some signature has this input or output alias (SIGNATURE/ALIAS to name one signature)",
    "input_dtype": "some input has this dtype (DT_FLOAT, or float32)",
    "input_shape": "some input has a shape matching this pattern: sizes, ? or -1 (unknown), * (any), ... (any dims)",
    "kind": "tf1 or tf2",
    "tags": "the model has this tag set (comma-separated)",
}
KINDS = ("tf1", "tf2")
_NUMPY_DTYPES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF", "str": "DT_STRING"}
ANY_DIM, ANY_DIMS, UNKNOWN = "*", "...", -1


def normalize(rule: str, value: str) -> str:
    """The rule's value in the form `mismatch` compares; InvalidEdit (what is accepted) when it is malformed."""
    if rule == "input_dtype":
        names = dtype_numbers()
        name = _NUMPY_DTYPES.get(value.lower(), value.upper() if value.upper() in names else f"DT_{value.upper()}")
        if name not in names or name.endswith("_REF"):
            hint = "e.g. DT_FLOAT, DT_UINT8, DT_STRING"
            raise InvalidEdit(f"input_dtype '{value}' is not a TensorFlow dtype", hint=hint)
        return name
    if rule == "input_shape":
        return ",".join(str(d) for d in shape_pattern(value))
    if rule == "kind" and value not in KINDS:
        raise InvalidEdit(f"kind '{value}' is not one of {listing(KINDS)}")
    return value


def shape_pattern(text: str) -> tuple[int | str, ...]:
    """`"?,224,224,3"` -> (-1, 224, 224, 3); `*` stays (any one dim), `...` stays (any number, once)."""
    dims: list[int | str] = []
    for token in (t.strip() for t in text.strip().strip("[]()").split(",")):
        if token in (ANY_DIM, ANY_DIMS):
            dims.append(token)
        elif token in ("?", "None", "-1"):
            dims.append(UNKNOWN)
        elif token.isdigit():
            dims.append(int(token))
        else:
            raise InvalidEdit(
                f"input_shape '{text}': '{token}' is not a size",
                hint='dims are sizes, ? or -1 (unknown), * (any one), ... (any number): "?,224,224,3", "*,...,3"',
            )
    if dims.count(ANY_DIMS) > 1:
        raise InvalidEdit(f"input_shape '{text}' has '...' more than once")
    return tuple(dims)


def shape_fits(pattern: Sequence[int | str], shape: tuple[int, ...] | None) -> bool:
    """Whether a tensor shape (None: unknown rank, -1: unknown dim) fits the pattern; unknown rank fits only `...`."""
    if shape is None:
        return tuple(pattern) == (ANY_DIMS,)
    if ANY_DIMS in pattern:
        cut = list(pattern).index(ANY_DIMS)
        head, tail = pattern[:cut], pattern[cut + 1 :]
        if len(head) + len(tail) > len(shape):
            return False
        return shape_fits(head, shape[: len(head)]) and shape_fits(tail, shape[len(shape) - len(tail) :])
    return len(pattern) == len(shape) and all(p in (ANY_DIM, d) for p, d in zip(pattern, shape, strict=True))


def mismatch(rules: Mapping[str, str], meta: MetaGraph) -> str | None:
    """Why the rules do not fit `meta` (None when they all do)."""
    keys = set(meta.signature_keys())
    for rule, value in rules.items():
        if rule == "signature" and value not in keys:
            return f"no signature '{value}'"
        if rule == "no_signature" and value in keys:
            return f"has signature '{value}'"
        if rule == "kind" and meta.kind != value:
            return f"a {meta.kind} export"
        if rule == "tags" and set(meta.tags) != {t.strip() for t in value.split(",")}:
            return f"tag set [{','.join(meta.tags)}]"
        if rule == "alias" and not _has_alias(meta, value):
            return f"no alias '{value}'"
        if rule == "input_dtype" and not any(t.dtype == value for s in meta.signatures() for t in s.inputs):
            return f"no input of dtype {value}"
        if rule == "input_shape" and not _has_shape(meta, shape_pattern(value)):
            return f"no input of shape {value}"
    return None


def _has_shape(meta: MetaGraph, pattern: Sequence[int | str]) -> bool:
    return any(t.name is not None and shape_fits(pattern, t.shape) for s in meta.signatures() for t in s.inputs)


def _has_alias(meta: MetaGraph, value: str) -> bool:
    key, _, alias = value.rpartition("/")
    signatures = [meta.signature(key)] if key and key in meta.signature_keys() else [] if key else meta.signatures()
    return any(alias in {t.alias for t in [*s.inputs, *s.outputs]} for s in signatures)
