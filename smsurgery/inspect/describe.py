"""What `show` reports about a model, as one JSON-ready dict.

The dict is the documented, stable schema of `smsurgery show --json`
(`"schema": "smsurgery.show/1"`); the rich tables are rendered from it, so a
Python caller, the JSON and the tables never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import scan_versions
from smsurgery.core.model import DEFAULT_TAGS, SavedModelFile, read
from smsurgery.edits.devices import placements
from smsurgery.inspect.show_warnings import show_warnings

SHOW_SCHEMA = "smsurgery.show/1"
# `show` reads the graph itself (for placements and the warnings that need it) only up to this size by
# default: below it the parse costs a few milliseconds; above, it is most of the command (1 GB: ~10 s, ~2 GB).
GRAPH_READ_LIMIT = 8 << 20


def describe(
    path: str | Path,
    *,
    version: int | None = None,
    tags: tuple[str, ...] | None = None,
    signature: str | None = None,
    ops: bool = False,
    graph: bool | None = None,
) -> dict[str, Any]:
    model = read(path, version)
    return describe_model(model, tags=tags, signature=signature, ops=ops, graph=graph)


def describe_model(
    model: SavedModelFile,
    *,
    tags: tuple[str, ...] | None = None,
    signature: str | None = None,
    ops: bool = False,
    graph: bool | None = None,
) -> dict[str, Any]:
    """The `show --json` dict. `graph`: read the graph (True), never (False), or when small (None)."""
    meta = model.meta_graph(tags)
    size = meta.graph_bytes
    read_graph = ops or graph is True or (graph is None and size <= GRAPH_READ_LIMIT)
    require_intact(model)  # a missing shard or an escaping symlink is an error, not a detail
    signatures = [meta.signature(signature)] if signature is not None else meta.signatures()
    ref = model.ref
    listing = scan_versions(ref.base) if ref.base is not None else None
    variables = model.variables()
    placed = placements(meta) if read_graph else None
    result: dict[str, Any] = {
        "schema": SHOW_SCHEMA,
        "path": ref.location,
        "base": str(ref.base_location) if ref.base_location is not None else None,
        "version": ref.version,
        "versions": sorted(listing.versions) if listing is not None else [],
        "format": ref.saved_model_file.name,
        "kind": meta.kind,
        "tag_sets": [list(t) for t in model.tag_sets],
        "tags": list(meta.tags),
        "default_signature": meta.default_signature,
        "signatures": {s.key: s.to_json() for s in signatures},
        "variables": {"present": variables.present, "count": variables.count, "bytes": variables.bytes},
        "assets": [{"path": f.path, "bytes": f.bytes} for f in model.files_under("assets")],
        "assets_extra": [{"path": f.path, "bytes": f.bytes} for f in model.files_under("assets.extra")],
        "graph_bytes": size,
        "graph_read": read_graph,
        "placements": placed,
    }
    wanted = tags if tags is not None else DEFAULT_TAGS
    result["warnings"] = show_warnings(model, meta, listing, wanted, graph=read_graph, placed=placed)
    if ops:
        result["ops"] = meta.op_histogram()
    return result
