"""Local mirrors of remote versions: what reads need, and the shards only when TensorFlow needs them.

Every reading command works on local files (the skim, the integrity check,
the describers). A mirror of a remote version holds its `saved_model.pb`,
`variables/variables.index`, assets and every other small file, downloaded;
the `variables.data-*` shards are *placeholders*: sparse files of the
listed size, so the integrity check (every shard named by the index exists
and is long enough) judges the real sizes without moving the bytes.
`materialize` replaces the placeholders by the real bytes, in place (hard
links made from them see the data too); the TensorFlow layer calls it
before any loader opens a folder, so TensorFlow never reads a placeholder.

A `saved_model.pb` of `RANGED_MIN_BYTES` or more is a placeholder too, but
a lazy one (`core.lazy_files`): the skim reads its small fields through
block-cached range requests (`storage.ranged`), and the first reader that
needs the whole file (the graph, a full parse, an edit) downloads it, once.

Mirrors live in one temporary folder per process, removed at exit; the
folder of a process that was killed is removed by the next one
(`cache_owner`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smsurgery.core import lazy_files
from smsurgery.storage import cache_owner
from smsurgery.storage.fs import filesystem, storage_errors
from smsurgery.storage.ranged import RangedObject
from smsurgery.storage.transfer import TRANSFER
from smsurgery.storage.url import RemoteURL

CHUNK = 8 << 20
# Below this a saved_model.pb is downloaded whole (one request); above, reads fetch the ranges the skim needs.
RANGED_MIN_BYTES = 1 << 20
ProgressCallback = Callable[[str, int, int], None]  # (what, bytes done, bytes total), as publishing.atomic's


@dataclass
class Mirror:
    url: RemoteURL  # the remote version prefix
    sizes: dict[str, int]  # relative path -> bytes, of every object under it
    placeholders: set[str] = field(default_factory=set)


_MIRRORS: dict[Path, Mirror] = {}
_ROOT: list[Path] = []


def cache_dir(kind: str) -> Path:
    """A fresh folder in this process's cache (removed at exit; a killed process's, by the next one)."""
    if not _ROOT:
        where = Path(tempfile.gettempdir())
        cache_owner.clean_dead(where)
        root = Path(tempfile.mkdtemp(prefix=f"{cache_owner.PREFIX}{os.getpid()}-", dir=where))
        cache_owner.claim(root)
        _ROOT.append(root)
        atexit.register(shutil.rmtree, root, True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_ROOT[0]))


def is_shard(relative: str) -> bool:
    return relative.startswith("variables/variables.data-")


def list_tree(url: RemoteURL) -> dict[str, int]:
    """Every object under the prefix `url`, relative path -> size (one paginated listing)."""
    fs = filesystem(url)
    with storage_errors(url, f"list {url}"):
        found = fs.find(url.path, detail=True)
    return {
        url.relative(name): int(info.get("size") or 0)
        for name, info in found.items()
        if info.get("type") == "file" and name.startswith(url.path + "/")
    }


def list_children(url: RemoteURL) -> set[str]:
    """Names of the prefixes and objects directly under `url` (one delimited listing)."""
    fs = filesystem(url)
    with storage_errors(url, f"list {url}"):
        found = fs.ls(url.path, detail=False)
    return {url.relative(name.rstrip("/")) for name in found if name.startswith(url.path + "/")}


def mirror_of(folder: Path) -> Mirror | None:
    """The remote version a local folder mirrors, if it is one."""
    return _MIRRORS.get(Path(folder).resolve())


def mirror_version(url: RemoteURL, sizes: dict[str, int], local: Path) -> Path:
    """Download everything under `url` except the shards (and a big saved_model.pb) into `local`."""
    fs = filesystem(url)
    mirror = Mirror(url=url, sizes=dict(sizes))
    local.mkdir(parents=True, exist_ok=True)
    with storage_errors(url, f"read {url}"):
        for relative, size in sorted(sizes.items()):
            target = local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_shard(relative) or (relative == "saved_model.pb" and size >= RANGED_MIN_BYTES):
                with open(target, "wb") as handle:
                    handle.truncate(size)  # sparse: the size without the bytes
                mirror.placeholders.add(relative)
                if not is_shard(relative):
                    lazy_files.register(target, _LazyObject(mirror, local, relative))
                continue
            fs.get_file(url.child(relative).path, str(target))
            TRANSFER.downloaded += size
    _MIRRORS[local.resolve()] = mirror
    return local


def _count_download(size: int) -> None:
    TRANSFER.downloaded += size


class _LazyObject:
    """A lazy placeholder's source (`core.lazy_files.LazySource`): ranged views, or the whole object."""

    def __init__(self, mirror: Mirror, folder: Path, relative: str) -> None:
        self.mirror, self.folder, self.relative = mirror, folder, relative
        self._view: RangedObject | None = None

    def view(self) -> RangedObject:
        if self._view is None:  # one block cache per file: a second skim of it fetches nothing again
            self._view = RangedObject(self.mirror.url.child(self.relative), self.mirror.sizes[self.relative],
                                      _count_download)  # fmt: skip
        return self._view

    def fetch(self) -> None:
        if self.relative in self.mirror.placeholders:
            _download(self.mirror, self.folder, self.relative, None)


def _download(mirror: Mirror, folder: Path, relative: str, progress: ProgressCallback | None) -> int:
    """Write one placeholder's real bytes into it, in place; the bytes moved."""
    fs = filesystem(mirror.url)
    total, done = mirror.sizes[relative], 0
    remote = mirror.url.child(relative)
    # r+b, not a new file: hard links made from the placeholder (a staged version) get the bytes too.
    with (
        storage_errors(mirror.url, f"download {remote}"),
        fs.open(remote.path, "rb", block_size=CHUNK) as reader,
        open(folder / relative, "r+b") as writer,
    ):
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(f"download {relative}", done, total)
    TRANSFER.downloaded += done
    mirror.placeholders.discard(relative)
    return done


def materialize(folder: str | Path, progress: ProgressCallback | None = None) -> int:
    """Download the real bytes of every placeholder of a mirrored folder (in place); bytes moved."""
    mirror = mirror_of(Path(folder))
    if mirror is None or not mirror.placeholders:
        return 0
    moved = 0
    for relative in sorted(mirror.placeholders):
        if lazy_files.is_lazy(Path(folder) / relative):
            lazy_files.ensure_whole(Path(folder) / relative)  # through the registry: it forgets the placeholder
            moved += mirror.sizes[relative]
        else:
            moved += _download(mirror, Path(folder), relative, progress)
    return moved


def make_skeleton(local_base: Path, names: set[str]) -> Path:
    """Empty folders named as the base's children: the listing as Serving's rules read it, locally."""
    local_base.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name and name not in (".", "..") and "/" not in name:
            (local_base / name).mkdir(exist_ok=True)
    return local_base


def remove_mirror(folder: Path) -> None:
    _MIRRORS.pop(Path(folder).resolve(), None)
    lazy_files.forget(Path(folder) / "saved_model.pb")
    shutil.rmtree(folder, ignore_errors=True)
