"""What `show` warns about: things a reader of the model would not guess.

`show` falls back to the only meta graph when none has the `serve` tags, and
lists versions as Serving reads them; these warnings say what that hides:
Serving would refuse the version, load another folder, or skip one; the
loader would take the first of two meta graphs with one tag set; the
checkpoint holds tensors the graph does not restore (an index from another
model, or optimizer slots). Each is one sentence; `check` has the codes.
"""

from __future__ import annotations

from smsurgery.core.checkpoint_index import OBJECT_GRAPH_KEY
from smsurgery.core.layout import VersionListing
from smsurgery.core.model import MetaGraph, SavedModelFile, tag_set_text
from smsurgery.edits.devices import gpu_pin_warning, placements
from smsurgery.edits.tags import object_graph_unused_warning
from smsurgery.inspect.check_graph import restored_names
from smsurgery.inspect.restore_check import tf1_loader_warning


def show_warnings(
    model: SavedModelFile,
    meta: MetaGraph,
    listing: VersionListing | None,
    tags: tuple[str, ...],
    *,
    graph: bool = True,
    placed: dict[str, int] | None = None,
) -> list[str]:
    """The warnings; those that need the graph (checkpoint extras, GPU pins, the TF1 loader) only with `graph`.

    `placed`: the graph's `placements`, when the caller counted them already (a walk of every node).
    """
    warnings = _version_warnings(listing) if listing is not None else []
    sets = [frozenset(t) for t in model.tag_sets]
    if frozenset(tags) not in sets:
        available = "; ".join("[" + tag_set_text(t) + "]" for t in model.tag_sets)
        warnings.append(
            f"no meta graph has tags [{tag_set_text(tags)}] (tag sets: {available}): TensorFlow Serving refuses to "
            f"load this version (\"MetaGraphDef associated with tags '{tag_set_text(tags)}' could not be found\"); "
            f"shown: [{tag_set_text(meta.tags)}]"
        )
    for tag_set in sorted({s for s in sets if sets.count(s) > 1}, key=sorted):
        warnings.append(
            f"{sets.count(tag_set)} meta graphs have tags [{tag_set_text(sorted(tag_set))}]: "
            "TensorFlow loads the first one and never the others"
        )
    unused = object_graph_unused_warning(len(sets), meta.kind == "tf2")
    if unused:
        warnings.append(unused)
    if not graph:
        return warnings
    warnings += _checkpoint_warnings(model, meta)
    pins = gpu_pin_warning(placements(meta) if placed is None else placed)
    if pins:
        warnings.append(pins)
    tf1_loader = tf1_loader_warning(meta.proto) if meta.kind == "tf2" else None
    if tf1_loader:
        warnings.append(tf1_loader)
    return warnings


def _version_warnings(listing: VersionListing) -> list[str]:
    warnings = []
    for number, ignored in sorted(listing.duplicates.items()):
        names = ", ".join(p.name for p in ignored)
        warnings.append(
            f"folders {names} and {listing.versions[number].name} are all version {number}: "
            f"Serving loads {listing.versions[number].name} and ignores {names}"
        )
    for name in listing.skipped:
        warnings.append(f"folder {name} is not an int64 version number: Serving skips it")
    return warnings


def _checkpoint_warnings(model: SavedModelFile, meta: MetaGraph) -> list[str]:
    restored = restored_names(meta)
    if restored is None or not model.index_path.is_file():
        return []
    extra = sorted({e.name for e in model.index_entries()} - restored - {OBJECT_GRAPH_KEY})
    if not extra:
        return []
    more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
    return [
        f"the checkpoint index names {len(extra)} tensor(s) the graph's variables do not have: "
        f"{', '.join(extra[:3])}{more} (an index from another model, or optimizer slots)"
    ]
