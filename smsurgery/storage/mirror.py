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

Mirrors live in one temporary folder per process, removed at exit.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from smsurgery.storage.fs import filesystem, storage_errors
from smsurgery.storage.url import RemoteURL

CHUNK = 8 << 20
ProgressCallback = Callable[[str, int, int], None]  # (what, bytes done, bytes total), as publishing.atomic's


@dataclass
class Transfer:
    """Bytes this process moved: through this machine (down, up), and copied inside the store."""

    downloaded: int = 0
    uploaded: int = 0
    copied: int = 0

    def since(self, start: Transfer) -> Transfer:
        """What moved after `start` (a copy taken earlier): one command's share of the process totals."""
        return Transfer(self.downloaded - start.downloaded, self.uploaded - start.uploaded, self.copied - start.copied)

    def snapshot(self) -> Transfer:
        return Transfer(self.downloaded, self.uploaded, self.copied)

    def to_json(self) -> dict[str, int]:
        return {"bytes_downloaded": self.downloaded, "bytes_uploaded": self.uploaded, "bytes_copied": self.copied}


TRANSFER = Transfer()


@dataclass
class Mirror:
    url: RemoteURL  # the remote version prefix
    sizes: dict[str, int]  # relative path -> bytes, of every object under it
    placeholders: set[str] = field(default_factory=set)


_MIRRORS: dict[Path, Mirror] = {}
_ROOT: list[Path] = []


def cache_dir(kind: str) -> Path:
    """A fresh folder in this process's cache (removed at exit)."""
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="smsurgery-remote-")))
        atexit.register(shutil.rmtree, _ROOT[0], True)
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
    """Download everything under `url` except the shards into `local`; shards become placeholders."""
    fs = filesystem(url)
    mirror = Mirror(url=url, sizes=dict(sizes))
    local.mkdir(parents=True, exist_ok=True)
    with storage_errors(url, f"read {url}"):
        for relative, size in sorted(sizes.items()):
            target = local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_shard(relative):
                with open(target, "wb") as handle:
                    handle.truncate(size)  # sparse: the size without the bytes
                mirror.placeholders.add(relative)
                continue
            fs.get_file(url.child(relative).path, str(target))
            TRANSFER.downloaded += size
    _MIRRORS[local.resolve()] = mirror
    return local


def materialize(folder: str | Path, progress: ProgressCallback | None = None) -> int:
    """Download the real bytes of every placeholder shard of a mirrored folder (in place); bytes moved."""
    mirror = mirror_of(Path(folder))
    if mirror is None or not mirror.placeholders:
        return 0
    fs = filesystem(mirror.url)
    moved = 0
    with storage_errors(mirror.url, f"download the variables of {mirror.url}"):
        for relative in sorted(mirror.placeholders):
            total = mirror.sizes[relative]
            done = 0
            # r+b, not a new file: hard links made from the placeholder (a staged version) get the bytes too.
            remote = mirror.url.child(relative).path
            with fs.open(remote, "rb", block_size=CHUNK) as reader, open(Path(folder) / relative, "r+b") as writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(f"download {relative}", done, total)
            moved += done
            TRANSFER.downloaded += done
    mirror.placeholders.clear()
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
    shutil.rmtree(folder, ignore_errors=True)
