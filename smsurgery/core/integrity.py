"""Is a version folder whole and safe to read, serve and copy from?

A parsed `saved_model.pb` says little about the files around it. TensorFlow
Serving fails at load time when a variable shard is missing or short, and a
copy of a hostile folder could carry a file from outside it (an asset named
`../../etc/passwd`, a symlink to `/`). `check_version` looks, without
TensorFlow and without reading tensor data:

- every entry is a regular file, a folder, or a symlink that resolves, without
  a loop, to one of those inside the version folder: a device, a FIFO or a
  socket is refused before anything opens it (a copy of a `/dev/zero`-like
  node never ends, a read of a FIFO blocks forever);
- every file can be read;
- `variables/variables.index` parses, every shard it names exists, and each
  tensor's bytes (offset + size) lie inside its shard;
- every asset the meta graphs name is a plain relative path under `assets/`
  and exists. An absent asset that no node reads is only a warning: the
  loaders (and TensorFlow Serving's own test models) live with it.

`require_intact` raises `CorruptModel` on the first error; `show` and the
proto publisher call it, so a broken source is refused before anything is
written.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import CorruptModel, SmsurgeryError
from smsurgery.core.names import node_of
from smsurgery.core.user_files import special_kind

ERROR = "error"
WARNING = "warning"
_SHARD = re.compile(r"^variables\.data-(\d+)-of-(\d+)$")


@dataclass(frozen=True)
class Problem:
    severity: str  # error | warning
    path: str  # relative to the version folder
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_version(model: Any) -> list[Problem]:
    """Every problem found in a `SavedModelFile`'s version folder (errors first)."""
    root = Path(model.path)
    problems = _check_tree(root)
    if not any(p.severity == ERROR for p in problems):
        problems += _check_variables(model)
    problems += _check_assets(root, model)
    return sorted(problems, key=lambda p: p.severity != ERROR)


def require_intact(model: Any) -> list[Problem]:
    """Raise `CorruptModel` naming the first error; return the warnings."""
    problems = check_version(model)
    errors = [p for p in problems if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise CorruptModel(f"{model.ref}: {errors[0]}{more}")
    return problems


def require_safe_tree(folder: str | Path) -> None:
    """Refuse a folder that a TensorFlow loader must not open: special files, escaping symlinks.

    The cheap half of `require_intact` (a walk, no parsing), run before any
    loader touches a folder: TensorFlow would block forever on a FIFO asset.
    """
    errors = [p for p in _check_tree(Path(folder)) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise CorruptModel(f"{folder}: {errors[0]}{more}")


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _check_tree(root: Path) -> list[Problem]:
    """Symlinks stay inside, nothing loops, everything can be read."""
    problems: list[Problem] = []
    try:
        real_root = Path(os.path.realpath(root, strict=True))
    except OSError as error:
        return [Problem(ERROR, ".", f"cannot resolve the version folder: {error.strerror}")]
    if not os.access(root, os.R_OK | os.X_OK):
        return [Problem(ERROR, ".", "the version folder cannot be read (permission denied)")]

    def on_error(error: OSError) -> None:
        where = _relative(root, Path(error.filename)) if error.filename else "."
        problems.append(Problem(ERROR, where, f"cannot be read: {error.strerror}"))

    for folder, dirs, files in os.walk(root, onerror=on_error):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            relative = _relative(root, path)
            problem = _check_entry(real_root, path, relative)
            if problem is not None:
                problems.append(problem)
                continue
            if name in files and not os.access(path, os.R_OK):
                problems.append(Problem(ERROR, relative, "cannot be read (permission denied)"))
    return problems


def _check_entry(real_root: Path, path: Path, relative: str) -> Problem | None:
    """A device, FIFO or socket is refused before anything opens it: a copy or a read would never end."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return Problem(ERROR, relative, f"cannot be read: {error.strerror}")
    if stat.S_ISLNK(mode):
        return _check_symlink(real_root, path, relative)
    kind = special_kind(mode)
    if kind is not None:
        return Problem(ERROR, relative, f"is {kind}: a version folder may hold only files and folders")
    return None


def _check_symlink(real_root: Path, path: Path, relative: str) -> Problem | None:
    try:
        target = Path(os.path.realpath(path, strict=True))
    except OSError as error:
        if error.errno == 40:  # ELOOP
            return Problem(ERROR, relative, "is a symlink loop")
        return Problem(ERROR, relative, f"is a symlink to nothing ({os.readlink(path)})")
    except RuntimeError:
        return Problem(ERROR, relative, "is a symlink loop")
    if target != real_root and real_root not in target.parents:
        return Problem(ERROR, relative, f"is a symlink that leaves the version folder (to {target})")
    kind = special_kind(os.stat(target).st_mode)
    if kind is not None:
        return Problem(ERROR, relative, f"is a symlink to {kind}: a version folder may hold only files and folders")
    if target.is_dir() and Path(os.path.realpath(path.parent)).is_relative_to(target):
        # Carrying it over would copy the folder into itself without end.
        return Problem(ERROR, relative, "is a symlink to a folder that contains it (a symlink loop)")
    return None


def _check_variables(model: Any) -> list[Problem]:
    root = Path(model.path)
    folder = root / "variables"
    index = folder / "variables.index"
    shards = {}
    if folder.is_dir():
        for child in folder.iterdir():
            match = _SHARD.match(child.name)
            if match:
                shards[int(match[1])] = (child, int(match[2]))
    if not index.exists():
        if shards:
            return [Problem(ERROR, "variables/variables.index", "is missing, but variable data shards exist")]
        return []
    try:
        entries = model.index_entries()
    except SmsurgeryError as error:
        reason = str(error.__cause__) if error.__cause__ is not None else error.message
        return [Problem(ERROR, "variables/variables.index", f"does not parse: {reason}")]
    totals = {count for _path, count in shards.values()}
    if len(totals) > 1:
        return [Problem(ERROR, "variables", f"has data shards of different sets (-of-{sorted(totals)})")]
    sizes: dict[int, int] = {}
    problems: list[Problem] = []
    for entry in entries:
        if entry.size == 0:
            continue
        if entry.shard_id not in shards:
            name = f"variables/variables.data-{entry.shard_id:05d}-of-{max(totals, default=1):05d}"
            problems.append(Problem(ERROR, name, f"is missing (variables.index needs it for '{entry.name}')"))
            break
        path = shards[entry.shard_id][0]
        if entry.shard_id not in sizes:
            sizes[entry.shard_id] = path.stat().st_size
        if entry.offset + entry.size > sizes[entry.shard_id]:
            problems.append(
                Problem(
                    ERROR,
                    _relative(root, path),
                    f"is {sizes[entry.shard_id]} bytes, but variables.index puts '{entry.name}' at bytes "
                    f"{entry.offset}-{entry.offset + entry.size}: truncated, or an index of other data",
                )
            )
            break
    return problems


def referenced_assets(saved_model: Any) -> list[tuple[str, str]]:
    """(asset filename, tensor name) of every asset any meta graph names."""
    asset_class = protos.message_class("tensorflow/core/protobuf/meta_graph.proto", "tensorflow.AssetFileDef")
    found: list[tuple[str, str]] = []
    for meta in saved_model.meta_graphs:
        for asset in meta.asset_file_def:
            found.append((asset.filename, asset.tensor_info.name))
        if "saved_model_assets" in meta.collection_def:
            for packed in meta.collection_def["saved_model_assets"].any_list.value:
                try:
                    asset = asset_class.FromString(packed.value)
                except Exception:  # reported as an unreadable asset entry
                    found.append(("<unreadable AssetFileDef>", ""))
                    continue
                found.append((asset.filename, asset.tensor_info.name))
    return sorted(set(found))


def unsafe_asset_name(filename: str) -> str | None:
    """Why an asset filename could reach outside `assets/`, or None when it is plain."""
    if not filename or "\x00" in filename:
        return "is empty or holds a NUL byte"
    if filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", filename):
        return "is an absolute path"
    parts = PurePosixPath(filename.replace("\\", "/")).parts
    if ".." in parts:
        return "climbs out of assets/ with '..'"
    return None


def _consumed_tensors(model: Any) -> set[str]:
    """Node names that some node of some meta graph takes as an input (parses the graphs: only asked
    when an asset is missing)."""
    used: set[str] = set()
    for position in range(len(model.skim.meta_graphs)):
        for node in model.graph_def(position).node:
            used.update(node_of(i) for i in node.input)
    return used


def _check_assets(root: Path, model: Any) -> list[Problem]:
    problems: list[Problem] = []
    consumed: set[str] | None = None
    for filename, tensor in referenced_assets(model.skim):
        why = unsafe_asset_name(filename)
        if why is not None:
            problems.append(Problem(ERROR, "saved_model.pb", f"asset filename {filename!r} {why}"))
            continue
        try:
            if (root / "assets" / filename).is_file():
                continue
        except OSError:
            pass  # an unreadable assets/ folder is reported by the tree check
        if consumed is None:
            consumed = _consumed_tensors(model)
        if tensor and node_of(tensor) in consumed:
            problems.append(Problem(ERROR, f"assets/{filename}", "is missing (the graph reads it at load time)"))
        else:
            problems.append(Problem(WARNING, f"assets/{filename}", "is missing (named by the model, read by no op)"))
    return problems
