"""Resolve what the user typed, local or remote, into a `ModelRef` every reader can use.

A remote base is listed once (one paginated listing: what Serving's
`GetChildren` sees too), its children become empty local folders so that
`layout.scan_versions` picks the version by Serving's own rules (int64
names, `01` vs `1`), and only the chosen version is mirrored: its small
files downloaded, its shards left as placeholders (see `mirror`).
"""

from __future__ import annotations

from pathlib import Path

from smsurgery.core.errors import NotASavedModel, PathNotFound, SmsurgeryError, VersionNotFound, listing
from smsurgery.core.layout import SAVED_MODEL_FILES, ModelRef, parse_version_name, scan_versions
from smsurgery.core.layout import resolve as resolve_local
from smsurgery.storage.mirror import cache_dir, list_children, list_tree, make_skeleton, mirror_version
from smsurgery.storage.url import RemoteURL, is_remote, parse


def resolve(text: str | Path, version: int | None = None) -> ModelRef:
    """`layout.resolve` for local paths; s3:// and gs:// URLs (and `URL@N`) through a mirror."""
    if not is_remote(str(text)):
        return resolve_local(text, version)
    url, suffix = parse(str(text))
    if suffix is not None and version is not None and suffix != version:
        raise SmsurgeryError(f"two versions asked for: {url}@{suffix} and --version {version}")
    return resolve_remote(url, version if version is not None else suffix)


def _top_files(tree: dict[str, int]) -> set[str]:
    return {name for name in tree if "/" not in name}


def _version_subtree(tree: dict[str, int], name: str) -> dict[str, int]:
    prefix = name + "/"
    return {rel[len(prefix) :]: size for rel, size in tree.items() if rel.startswith(prefix)}


def resolve_remote(url: RemoteURL, version: int | None) -> ModelRef:
    if url.name in SAVED_MODEL_FILES:  # s3://b/m/3/saved_model.pb: its folder
        if version is not None:
            raise VersionNotFound(f"{url} is one SavedModel file; a version needs a model base")
        url = url.parent
    tree = list_tree(url)
    if not tree:
        raise PathNotFound(f"nothing is stored under {url}", hint="check the bucket and prefix (no such prefix)")
    if _top_files(tree) & set(SAVED_MODEL_FILES):
        if version is not None:
            raise VersionNotFound(f"{url} is a version folder, not a model base; @{version} needs the prefix above it")
        return _bare_version(url, tree)
    local_base = make_skeleton(cache_dir("base"), {rel.split("/", 1)[0] for rel in tree if "/" in rel})
    found = scan_versions(local_base)
    if not found.versions:
        shown = sorted({rel.split("/", 1)[0] for rel in tree})
        raise NotASavedModel(
            f"{url} has no saved_model.pb and no integer version prefixes",
            hint=f"it holds: {listing(shown[:12], empty='nothing')}",
        )
    number = found.newest if version is None else version
    if number not in found.versions:
        raise VersionNotFound(f"{url} has no version {number}", hint=f"versions: {listing(map(str, found.versions))}")
    name = found.versions[number].name
    subtree = _version_subtree(tree, name)
    if not _top_files(subtree) & set(SAVED_MODEL_FILES):
        raise NotASavedModel(
            f"{url.child(name)} has no saved_model.pb (an upload in progress, or not a SavedModel)",
            hint=f"it holds: {listing(sorted(subtree)[:12], empty='nothing')}",
        )
    version_dir = mirror_version(url.child(name), subtree, local_base / name)
    return ModelRef(
        version_dir=version_dir, base=local_base, version=number, origin=str(url.child(name)), remote_base=str(url)
    )


def _bare_version(url: RemoteURL, tree: dict[str, int]) -> ModelRef:
    """A version prefix named directly; when its name is an integer, the prefix above is its base."""
    number = parse_version_name(url.name)
    if number is None:
        version_dir = mirror_version(url, tree, cache_dir("version") / url.name)
        return ModelRef(version_dir=version_dir, origin=str(url))
    local_base = make_skeleton(cache_dir("base"), list_children(url.parent))
    version_dir = mirror_version(url, tree, local_base / url.name)
    return ModelRef(
        version_dir=version_dir, base=local_base, version=number, origin=str(url), remote_base=str(url.parent)
    )


def remote_base_skeleton(text: str) -> tuple[str, Path]:
    """A remote model base as Serving's poll lists it: its URL, and a local skeleton of its children.

    The skeleton (empty folders named as the children) lets
    `layout.scan_versions` read the versions by Serving's own rules
    (`config write` / `config check` of a bucket's base) without a download.
    """
    url, at = parse(text)
    if at is not None:
        raise SmsurgeryError(f"{text}: a model base has no @VERSION", hint=f"name the base, {url}")
    return str(url), make_skeleton(cache_dir("base"), list_children(url))
