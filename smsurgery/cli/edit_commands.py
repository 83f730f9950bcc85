"""The bodies of the edit commands whose options are all plain values, typer-free.

The typer declarations (`tags`, `devices`, `shape`, `signature`) hold the
help texts and call these; `fast` calls them directly for a plain call, so
a proto-only edit never imports typer (issue 16: a `tags set --no-verify`
must be 20x cheaper than TensorFlow's load and re-export). Each takes the
parameters its typer command declares, with the same defaults
(`tests/test_startup.py` checks), and the `PublishTarget` the publish
options make.
"""

from __future__ import annotations

from smsurgery.cli.common import parse_tags
from smsurgery.cli.edit_output import run_edits
from smsurgery.core.errors import InvalidEdit
from smsurgery.core.model import read
from smsurgery.edits.kinds import (
    AddTags,
    RemoveSignature,
    RenameAlias,
    RenameSignature,
    SetDevices,
    SetShape,
    SetTags,
    StripDevices,
)
from smsurgery.edits.shapes import parse_dims
from smsurgery.publishing.target import PublishTarget


def _new_tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",")) if text else ()


def side(as_input: bool, as_output: bool) -> str | None:
    """Which side of a signature `--input`/`--output` name (None: wherever the alias is)."""
    if as_input and as_output:
        raise InvalidEdit("--input and --output exclude each other")
    return "inputs" if as_input else "outputs" if as_output else None


def tags_set(
    path: str, new_tags: str, tags: str | None = None, as_json: bool = False, *, target: PublishTarget
) -> None:
    run_edits(path, [SetTags(_new_tags(new_tags))], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def tags_add(
    path: str, new_tags: str, tags: str | None = None, as_json: bool = False, *, target: PublishTarget
) -> None:
    run_edits(path, [AddTags(_new_tags(new_tags))], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def devices_strip(path: str, tags: str | None = None, as_json: bool = False, *, target: PublishTarget) -> None:
    run_edits(path, [StripDevices()], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def devices_set(
    path: str, device: str, match: str | None = None, tags: str | None = None, as_json: bool = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    run_edits(path, [SetDevices(device, match)], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def _dims(path: str, tags: str | None, key: str, alias: str, dims: str | None, batch: str | None) -> tuple[int, ...]:
    """DIMS as given, or the current shape with dimension 0 replaced by --batch."""
    if dims is not None and batch is not None:
        raise InvalidEdit("give DIMS or --batch, not both")
    if dims is not None:
        return parse_dims(dims)
    if batch is None:
        raise InvalidEdit("give the new shape as DIMS (e.g. -1,224,224,3) or --batch dynamic")
    current = read(path).meta_graph(parse_tags(tags)).signature(key).input(alias).shape
    if not current:
        raise InvalidEdit(f"input '{alias}' has no dimension 0 to change (shape {current})", hint="give DIMS")
    return (parse_dims("-1" if batch == "dynamic" else batch)[0], *current[1:])


def shape_set(
    path: str, alias: str, dims: str | None = None, batch: str | None = None, signature: str = "serving_default",
    tags: str | None = None, as_json: bool = False, *, target: PublishTarget,
) -> None:  # fmt: skip
    edit = SetShape(signature, alias, _dims(path, tags, signature, alias, dims, batch))
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=False, as_json=as_json)


def signature_rename(
    path: str, old: str, new: str, tags: str | None = None, drop_object_graph: bool = False, as_json: bool = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    edit = RenameSignature(old, new)
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


def signature_remove(
    path: str, key: str, tags: str | None = None, drop_object_graph: bool = False, as_json: bool = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    edit = RemoveSignature(key)
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)


def alias_rename(
    path: str, old: str, new: str, signature: str = "serving_default", as_input: bool = False,
    as_output: bool = False, tags: str | None = None, drop_object_graph: bool = False, as_json: bool = False, *,
    target: PublishTarget,
) -> None:  # fmt: skip
    edit = RenameAlias(signature, old, new, side=side(as_input, as_output))
    run_edits(path, [edit], tags=tags, target=target, drop_object_graph=drop_object_graph, as_json=as_json)
