"""`[steps.match]` rules: does this step fit this model (as the earlier steps left it)?

Rules are evaluated on the draft, not on the source, so a recipe can rename
`serve` to `serve_raw` in step 1 and match `serve_raw` in step 2. A model
that a rule does not fit is skipped for that step, which is what makes a
second apply a no-op: `signature = "serve"` no longer matches once `serve`
was renamed.
"""

from __future__ import annotations

from collections.abc import Mapping

from smsurgery.core.model import MetaGraph


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
    return None


def _has_alias(meta: MetaGraph, value: str) -> bool:
    key, _, alias = value.rpartition("/")
    signatures = [meta.signature(key)] if key and key in meta.signature_keys() else [] if key else meta.signatures()
    return any(alias in {t.alias for t in [*s.inputs, *s.outputs]} for s in signatures)
