"""Tag sets of a SavedModel's meta graphs: retag one, or give it a second tag set.

TensorFlow Serving loads the meta graph whose tag set equals
`--saved_model_tags` (default `serve`) exactly, order ignored, and fails
with "MetaGraphDef associated with tags 'serve' could not be found" when
none does: an export tagged `train` or `transform` never loads. A meta
graph holds exactly one tag set, so `add` (a second tag set, `serve,gpu`)
is a copy of the meta graph under the new tags. Pure proto edits; the
TF-free readers (`show`, `run`) use `serving_tags_warning` to say what
Serving would do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from smsurgery.core.errors import InternalError, InvalidEdit, InvalidName, NameCollision, listing
from smsurgery.core.model import DEFAULT_TAGS, tag_set_text
from smsurgery.edits.changes import Change, EditReport


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """A tag set Serving's `--saved_model_tags` (comma-separated) can name: non-empty tags, no commas."""
    if not tags:
        raise InvalidName("a tag set must have at least one tag", hint="e.g. serve")
    for tag in tags:
        if not tag or not tag.strip():
            raise InvalidName("a tag must not be empty", hint=f"tags given: {list(tags)}")
        if "," in tag or tag != tag.strip() or any(not ch.isprintable() for ch in tag):
            raise InvalidName(f"tag {tag!r} has a comma, surrounding space or control characters")
    if len(set(tags)) != len(tags):
        raise InvalidName(f"tag set [{tag_set_text(tuple(tags))}] repeats a tag")
    return tuple(tags)


def _owner(saved: Any, tags: Iterable[str], skip: Any) -> Any | None:
    wanted = set(tags)
    return next((m for m in saved.meta_graphs if m is not skip and set(m.meta_info_def.tags) == wanted), None)


def _refuse_taken(saved: Any | None, meta: Any, tags: tuple[str, ...]) -> None:
    if saved is not None and _owner(saved, tags, skip=meta) is not None:
        sets = listing("[" + tag_set_text(tuple(m.meta_info_def.tags)) + "]" for m in saved.meta_graphs)
        raise NameCollision(
            f"another meta graph already has the tag set [{tag_set_text(tags)}]", hint=f"tag sets: {sets}"
        )


def set_tags(saved: Any | None, meta: Any, tags: Sequence[str]) -> EditReport:
    """Replace the tag set of `meta` (one of `saved.meta_graphs`) by `tags`."""
    new = check_tags(tags)
    old = tuple(meta.meta_info_def.tags)
    if set(old) == set(new):
        raise InvalidEdit(f"the meta graph is already tagged [{tag_set_text(old)}]")
    _refuse_taken(saved, meta, new)
    del meta.meta_info_def.tags[:]
    meta.meta_info_def.tags.extend(new)
    detail = f"tag set [{tag_set_text(old)}] -> [{tag_set_text(new)}]"
    return EditReport([Change("set_tags", "", old=",".join(old), new=",".join(new), detail=detail)])


def add_tags(saved: Any | None, meta: Any, tags: Sequence[str]) -> EditReport:
    """Append a copy of `meta` (as it stands now) to `saved` under the tag set `tags`."""
    new = check_tags(tags)
    if saved is None:
        raise InternalError("add_tags needs the SavedModel that holds the meta graph")
    _refuse_taken(saved, None, new)
    copy = saved.meta_graphs.add()
    copy.CopyFrom(meta)
    del copy.meta_info_def.tags[:]
    copy.meta_info_def.tags.extend(new)
    old = tuple(meta.meta_info_def.tags)
    detail = f"meta graph [{tag_set_text(old)}] also as [{tag_set_text(new)}] (a copy: a meta graph has one tag set)"
    report = EditReport([Change("add_tags", "", old=",".join(old), new=",".join(new), detail=detail)])
    warning = object_graph_unused_warning(len(saved.meta_graphs), len(meta.object_graph_def.nodes) > 0)
    if warning:
        report.warnings.append(warning)
    return report


def object_graph_unused_warning(meta_graph_count: int, has_object_graph: bool) -> str | None:
    """What `tf.saved_model.load` does with a TF2 export that has more than one meta graph (None: nothing odd).

    TensorFlow's `load.py` reads the object graph only when the SavedModel has
    exactly one meta graph; otherwise it loads the TF1 way (`load_v1_in_v2`).
    """
    if meta_graph_count < 2 or not has_object_graph:
        return None
    return (
        f"this SavedModel has {meta_graph_count} meta graphs: tf.saved_model.load reads the object graph only when "
        "there is one, so it loads this model the TF1 way (signatures only; no restored variables, methods or "
        "other objects); TensorFlow Serving is not affected"
    )


def same_but_tags(a: Any, b: Any) -> bool:
    """Whether two MetaGraphDefs differ only in their tag sets (as `add_tags` makes them)."""
    bare = []
    for meta in (a, b):
        copy = type(meta)()
        copy.CopyFrom(meta)
        del copy.meta_info_def.tags[:]
        bare.append(copy.SerializeToString(deterministic=True))
    return bare[0] == bare[1]


def tag_set_groups(saved: Any, chosen: Any) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The tag sets of the meta graphs equal to `chosen` apart from tags (its own first), and of the others."""
    same, other = [tuple(chosen.meta_info_def.tags)], []
    for meta in saved.meta_graphs:
        if meta is not chosen:
            (same if same_but_tags(meta, chosen) else other).append(tuple(meta.meta_info_def.tags))
    return same, other


def serving_tags_warning(tag_sets: Sequence[tuple[str, ...]], chosen: tuple[str, ...]) -> str | None:
    """What Serving would do with a model that has no `serve` meta graph (None when it has one)."""
    if any(set(t) == set(DEFAULT_TAGS) for t in tag_sets):
        return None
    sets = listing("[" + tag_set_text(t) + "]" for t in tag_sets)
    return (
        "no meta graph is tagged 'serve': TensorFlow Serving (default --saved_model_tags=serve) would not load "
        f"this version (\"MetaGraphDef associated with tags 'serve' could not be found\"; tag sets: {sets}); "
        f"this uses [{tag_set_text(chosen)}]. Fix: smsurgery tags set PATH serve --tags {','.join(chosen)}"
    )
