"""Publish a new version folder atomically, never touching existing ones.

TensorFlow Serving polls the model base and loads any new integer folder it
sees, so a version must appear complete or not at all. We build it in a
hidden staging folder inside the base (Serving ignores names that are not
integers; the same file system makes the final rename atomic), flush every
file and folder to disk, then rename it into place. A crash leaves only a
staging folder, which the next writer removes once its owner process is gone.

Files are carried over from the source version without re-serializing:
`variables.data-*` shards are hard-linked when possible (they are replaced by
rename when TensorFlow saves, so sharing them is safe); everything else is
copied, because TensorFlow rewrites `variables.index` *in place* and a shared
index would corrupt the other version on a later save.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smsurgery.core.errors import PublishError, SmsurgeryError
from smsurgery.core.layout import (
    INT64_MAX,
    SAVED_MODEL_FILES,
    check_new_version,
    has_saved_model,
    is_version_name,
    list_versions,
)

STAGING_PREFIX = ".smsurgery-staging-"
SCRATCH_PREFIX = ".smsurgery-scratch-"  # a base of intermediate versions (`scratch_base`), not a version
# Exactly the names `staged_version` and `scratch_base` give (PREFIX + pid + "-" + 8 hex digits): nothing else
# is removed.
_STAGING_NAME = re.compile(f"(?:{re.escape(STAGING_PREFIX)}|{re.escape(SCRATCH_PREFIX)})" + r"(\d+)-[0-9a-f]{8}")
# Files of the source version that the writer regenerates or drops instead of copying.
NOT_CARRIED = {*SAVED_MODEL_FILES, "fingerprint.pb"}
ProgressCallback = Callable[[str, int, int], None]  # (relative path, bytes done, bytes total)
# Staging folders being built by this process (any thread): never stale, whatever the pid says.
_ACTIVE_STAGING: set[Path] = set()
# Versions this process published: the CLI names them when it cannot report them (a failed stdout).
PUBLISHED: list[Path] = []


@dataclass
class CarryReport:
    linked: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    bytes_linked: int = 0


def next_version(base: Path) -> int:
    """One past the newest version by int value, as Serving orders them; never past int64."""
    versions = list_versions(base) if base.exists() else {}
    newest = max(versions, default=0)
    if newest >= INT64_MAX:
        raise PublishError(
            f"{base} already has version {INT64_MAX}, the largest TensorFlow Serving can read",
            hint="publish with an explicit --version below it",
        )
    return max(newest, 0) + 1


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(base: Path) -> list[Path]:
    """Remove staging folders of ours whose writer process no longer runs."""
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for child in base.iterdir():
        match = _STAGING_NAME.fullmatch(child.name)
        if match is None or not child.is_dir() or child.is_symlink():
            continue  # not a name we give: never ours to remove
        pid = int(match.group(1))
        if child in _ACTIVE_STAGING:
            continue
        if _pid_alive(pid) and pid != os.getpid():
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def _fsync_path(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            _fsync_path(Path(folder) / name)
        _fsync_path(Path(folder))


def write_bytes_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _copy_file(source: Path, target: Path, relative: str, progress: ProgressCallback | None) -> int:
    total = source.stat().st_size
    done = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(8 << 20):
            writer.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(relative, done, total)
    shutil.copystat(source, target)
    return total


def carry_over(
    source_dir: Path,
    target_dir: Path,
    *,
    link: bool = True,
    skip: set[str] | None = None,
    progress: ProgressCallback | None = None,
) -> CarryReport:
    """Bring variables/, assets/, assets.extra/ and other files into `target_dir`."""
    report = CarryReport()
    skip_set = NOT_CARRIED | (skip or set())
    # A symlinked folder inside the version (assets -> assets_real) is carried as a real folder
    # with its contents; the integrity check has refused links that leave the version or loop.
    for folder, dirs, files in os.walk(source_dir, followlinks=True):
        dirs.sort()
        relative_dir = Path(folder).relative_to(source_dir)
        (target_dir / relative_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            relative = (relative_dir / name).as_posix()
            if relative in skip_set:
                continue
            source, target = Path(folder) / name, target_dir / relative
            if link and relative_dir.as_posix() == "variables" and name.startswith("variables.data-"):
                try:
                    os.link(os.path.realpath(source), target)  # the data: link(2) would copy a symlink itself
                    report.linked.append(relative)
                    report.bytes_linked += source.stat().st_size
                    continue
                except OSError as error:
                    if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
            report.bytes_copied += _copy_file(source, target, relative, progress)
            report.copied.append(relative)
    return report


def _holds_versions(folder: Path) -> bool:
    try:
        return any(has_saved_model(path) for path in list_versions(folder).values())
    except (OSError, SmsurgeryError):
        return False


def refuse_base_inside_a_version(base: Path) -> None:
    """`--out m/1` must not nest versions inside version 1, nor inside a staging folder.

    Serving would find a version folder that holds other folders where its
    files belong. Every folder from `base` up to `/` is looked at, both as
    written and with symlinks resolved: one that is a staging folder of ours,
    or an integer-named folder holding a saved_model.pb, refuses the base;
    so does an integer-named base about to be created in a model base.
    """
    for path in dict.fromkeys((Path(os.path.abspath(base)), Path(os.path.realpath(base)))):
        for folder in (path, *path.parents):
            if folder.name.startswith(STAGING_PREFIX):
                raise PublishError(f"cannot publish into {base}: {folder} is a staging folder of a writer")
            try:
                is_version = is_version_name(folder.name) and has_saved_model(folder)
            except (OSError, SmsurgeryError):
                is_version = False
            if is_version:
                raise PublishError(
                    f"cannot publish into {base}: {folder} is version {int(folder.name)} of {folder.parent}",
                    hint="publish into a model base (the folder that holds the versions)",
                )
        if is_version_name(path.name) and not path.exists() and _holds_versions(path.parent):
            raise PublishError(
                f"cannot publish into {base}: it would become a version folder of {path.parent} without a model",
                hint=f"publish into {path.parent} with --version {int(path.name)}",
            )


@dataclass
class Staging:
    """A version being built; `path` is where to write its files."""

    base: Path
    path: Path
    version: int | None


@contextlib.contextmanager
def staged_version(base: Path, version: int | None = None) -> Iterator[Staging]:
    """Build a new version in a staging folder; publish it when the block ends.

    If the block raises, the staging folder is removed and nothing appears.
    `version=None` takes the next free integer at publish time, so two
    concurrent writers end with two distinct versions.
    """
    if version is not None:
        check_new_version(version)
    if str(base).split("/", 1)[0] in ("s3:", "gs:"):  # a URL (Path keeps `s3:/b/m`) reaching a local-only route
        raise PublishError(f"this command cannot publish into object storage ({base}) yet")
    refuse_base_inside_a_version(base)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PublishError(f"cannot create model base {base}: {error.strerror}") from error
    if not os.access(base, os.W_OK | os.X_OK):
        raise PublishError(f"cannot write into {base}: permission denied")
    if version is not None and _existing(base, version):
        raise PublishError(
            f"version {version} already exists in {base}",
            hint=f"the next free version is {next_version(base)}",
        )
    clean_stale_staging(base)
    path = base / f"{STAGING_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    staging = Staging(base=base, path=path, version=version)
    _ACTIVE_STAGING.add(path)
    try:
        # Inside the try: a signal raised just after mkdir (SIGTERM, SIGINT) must still remove the folder.
        # Nobody else can have made a folder of this name (our pid, a random part), so removing it is safe.
        try:
            path.mkdir()
        except OSError as error:
            raise PublishError(f"cannot write into {base}: {error.strerror}") from error
        yield staging
        _fsync_tree(path)
        staging.version = _rename_into_place(base, path, version)
        PUBLISHED.append(base / str(staging.version))
        _fsync_path(base)
    except OSError as error:
        shutil.rmtree(path, ignore_errors=True)
        # A full disk (ENOSPC, EFBIG), a read error while copying: one line naming the file.
        where = f" ({error.filename})" if error.filename else ""
        raise PublishError(
            f"cannot write a new version in {base}: {error.strerror or error}{where}; nothing was published"
        ) from error
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        _ACTIVE_STAGING.discard(path)


def _existing(base: Path, version: int) -> Path | None:
    return list_versions(base).get(version)


def _rename_into_place(base: Path, staging: Path, version: int | None) -> int:
    floor = 0  # past a number taken by something that is not a version folder (a file named `3`)
    for _attempt in range(100):
        number = version if version is not None else max(next_version(base), floor)
        floor = number + 1
        if _existing(base, number):
            if version is not None:
                raise PublishError(f"version {version} already exists in {base}")
            continue
        target = base / str(number)
        try:
            # rename(2) would replace an *empty* folder of that name: refuse it.
            if target.exists():
                raise OSError(errno.EEXIST, "exists")
            os.rename(staging, target)
            return number
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY) and version is not None:
                # Another writer took this number between our check and our rename.
                raise PublishError(f"version {version} already exists in {base}") from error
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise PublishError(f"cannot publish version {number} in {base}: {error.strerror}") from error
    raise PublishError(f"gave up finding a free version number in {base}")


@contextlib.contextmanager
def scratch_base(base: Path) -> Iterator[Path]:
    """A model base of intermediate versions inside `base`, removed when the block ends.

    A chain of publishes that must end in ONE new version of `base` (a
    recipe's in-memory edits, then an attachment built on them) stages its
    intermediate versions here: on the same file system (so shards link),
    invisible to Serving (not a version number), and named like a staging
    folder, so a killed writer's leftover is removed by the next publish.
    """
    refuse_base_inside_a_version(base)
    path = base / f"{SCRATCH_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    _ACTIVE_STAGING.add(path)
    try:
        try:
            path.mkdir(parents=True)
        except OSError as error:
            raise PublishError(f"cannot write into {base}: {error.strerror}") from error
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        _ACTIVE_STAGING.discard(path)
