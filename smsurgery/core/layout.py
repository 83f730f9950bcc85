"""Where a SavedModel lives on disk: model bases, version folders, references.

TensorFlow Serving reads a *model base* (`models/resnet/`) whose integer-named
sub-folders are versions (`00000123` is version 123) and serves the newest.
Users also point at a single version folder directly. This module turns
what the user typed (`models/resnet`, `models/resnet@3`, a version folder, a
`saved_model.pb`) into a `ModelRef`, and says clearly what a folder holds
when it is not a SavedModel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from smsurgery.core.errors import (
    NotASavedModel,
    PathNotFound,
    SmsurgeryError,
    VersionNotFound,
    listing,
)

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_AT_VERSION = re.compile(r"^(?P<path>.+)@(?P<version>\d+)$")
_KERAS_SUFFIXES = {".h5": "a Keras HDF5 file", ".hdf5": "a Keras HDF5 file", ".keras": "a Keras file"}


@dataclass(frozen=True)
class ModelRef:
    """A resolved version folder, and the model base it belongs to (if any).

    A remote version (`s3://...`, `gs://...`) is read from a local mirror:
    `version_dir` and `base` are the mirror's folders, `origin` and
    `remote_base` the URLs the user named (see `smsurgery.storage`).
    """

    version_dir: Path
    base: Path | None = None
    version: int | None = None
    origin: str | None = None
    remote_base: str | None = None

    @property
    def location(self) -> str:
        """The version as the user knows it: its URL when remote, else its folder."""
        return self.origin or str(self.version_dir)

    @property
    def base_location(self) -> str | Path | None:
        """The model base as the user knows it (a URL when remote), to resolve other versions of."""
        return self.remote_base or self.base

    @property
    def saved_model_file(self) -> Path:
        for name in SAVED_MODEL_FILES:
            candidate = self.version_dir / name
            if candidate.is_file():
                return candidate
        raise NotASavedModel(f"{self.version_dir} has no saved_model.pb")

    def __str__(self) -> str:
        if self.base_location is not None and self.version is not None:
            return f"{self.base_location}@{self.version}"
        return self.location


# absl::ascii_isspace: the characters SimpleAtoi strips from both ends.
_ASCII_SPACE = " \t\n\v\f\r"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_version_name(name: str) -> int | None:
    """The version Serving reads from a folder name, or None if it skips the name.

    `file_system_storage_path_source.cc` parses each child of the base with
    `absl::SimpleAtoi` into an int64: ASCII whitespace is stripped from both
    ends, one `+` or `-` sign may lead, then base-10 digits only (leading zeros
    allowed), and the value must fit in an int64. So `007`, `+7` and ` 7` are
    all version 7, and `-1` is version -1, while `9223372036854775808` is skipped.
    """
    text = name.strip(_ASCII_SPACE)
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or any(c not in "0123456789" for c in digits):
        return None
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else None


def is_version_name(name: str) -> bool:
    """True when TensorFlow Serving reads this folder name as a version."""
    return parse_version_name(name) is not None


def check_new_version(number: int) -> int:
    """A version number a writer may publish: 0 .. 2^63-1, written as plain digits.

    Serving would read `-1` too, but a negative version sorts below every other
    one and is nobody's intent; numbers past int64 are folders Serving skips.
    """
    if not 0 <= number <= INT64_MAX:
        raise VersionNotFound(
            f"version {number} is not one TensorFlow Serving can serve",
            hint=f"versions are integers from 0 to {INT64_MAX} (int64)",
        )
    return number


@dataclass(frozen=True)
class VersionListing:
    """A model base as Serving's file-system source sees it.

    `versions` maps each number to the folder Serving loads it from. When two
    names parse to one number (`1` and `01`), Serving walks the names in sorted
    order and the last one wins; the others are in `duplicates`.
    """

    versions: dict[int, Path]
    duplicates: dict[int, list[Path]]
    skipped: list[str]  # names that look numeric to a person but not to Serving (`1e3`, `10**30`)

    @property
    def newest(self) -> int | None:
        return max(self.versions, default=None)


def scan_versions(base: Path) -> VersionListing:
    """Every version folder of a base, chosen as Serving chooses them."""
    try:
        children = sorted(base.iterdir(), key=lambda child: child.name)
    except PermissionError as error:
        raise PathNotFound(f"cannot read {base}: permission denied") from error
    versions: dict[int, Path] = {}
    duplicates: dict[int, list[Path]] = {}
    skipped: list[str] = []
    for child in children:
        number = parse_version_name(child.name)
        if number is None:
            if child.name.strip(_ASCII_SPACE)[:1].isdigit() and child.is_dir():
                skipped.append(child.name)
            continue
        if not child.is_dir():
            continue
        if number in versions:
            duplicates.setdefault(number, []).append(versions[number])
        versions[number] = child  # the later name wins, as in IndexChildrenByVersion
    return VersionListing(dict(sorted(versions.items())), duplicates, skipped)


def list_versions(base: Path) -> dict[int, Path]:
    """Version folders of a model base by number, the folder Serving would load for each."""
    return scan_versions(base).versions


def has_saved_model(folder: Path) -> bool:
    try:
        return any((folder / name).is_file() for name in SAVED_MODEL_FILES)
    except PermissionError as error:  # a folder without read/search permission
        raise PathNotFound(f"cannot read {folder}: permission denied") from error


def split_version_suffix(text: str | Path) -> tuple[Path, int | None]:
    """`models/resnet@3` -> (models/resnet, 3); a path that exists wins as is."""
    raw = str(text)
    match = _AT_VERSION.match(raw)
    if match and not Path(raw).exists():
        return Path(match["path"]), int(match["version"])
    return Path(raw), None


def resolve(text: str | Path, version: int | None = None) -> ModelRef:
    """Turn what the user typed into one version folder holding a SavedModel."""
    path, suffix_version = split_version_suffix(text)
    if suffix_version is not None and version is not None and suffix_version != version:
        raise SmsurgeryError(f"two versions asked for: {path}@{suffix_version} and --version {version}")
    version = version if version is not None else suffix_version
    if not path.exists():
        raise PathNotFound(f"no such file or folder: {path}", hint=_nearest_existing(path))
    if path.is_file():
        return _resolve_file(path, version)
    if has_saved_model(path):
        if version is not None:
            raise VersionNotFound(
                f"{path} is a version folder, not a model base; --version {version} needs the folder above it"
            )
        return _version_ref(path)
    versions = list_versions(path)
    if not versions:
        raise describe_non_model(path)
    if version is None:
        version = max(versions)
    if version not in versions:
        raise VersionNotFound(
            f"{path} has no version {version}",
            hint=f"versions: {listing(str(v) for v in versions)}",
        )
    version_dir = versions[version]
    if not has_saved_model(version_dir):
        raise describe_non_model(version_dir)
    return ModelRef(version_dir=version_dir, base=path, version=version)


# The URL schemes `smsurgery.storage` reads (the keys of its `url.SCHEMES`; a test keeps them equal), and
# the URL rule itself (`storage.url.is_remote` is this function): here so that a local path never imports
# the storage package (fsspec plumbing, ~8 ms of every read).
REMOTE_SCHEMES = ("s3", "gs")


def is_remote_text(text: object) -> bool:
    """True for what `smsurgery.storage.url.is_remote` takes as a URL: `s3://...`, `gs://...`."""
    return isinstance(text, str) and text.split("://", 1)[0] in REMOTE_SCHEMES and "://" in text


def _version_ref(folder: Path) -> ModelRef:
    """A bare version folder; if Serving reads its name as a version, its parent is the base."""
    number = parse_version_name(folder.name)
    if number is not None:
        return ModelRef(version_dir=folder, base=folder.parent, version=number)
    return ModelRef(version_dir=folder)


def _resolve_file(path: Path, version: int | None) -> ModelRef:
    if path.name in SAVED_MODEL_FILES:
        if version is not None:
            raise VersionNotFound(f"{path} is one SavedModel file; --version needs a model base")
        return _version_ref(path.parent)
    kind = _KERAS_SUFFIXES.get(path.suffix.lower())
    if kind:
        raise NotASavedModel(
            f"{path} is {kind}, not a SavedModel",
            hint=f"smsurgery convert {path} BASE makes one",
        )
    if path.suffix.lower() in {".pb", ".pbtxt"}:
        raise NotASavedModel(
            f"{path} is not named saved_model.pb; a frozen graph?",
            hint=f"smsurgery convert {path} BASE makes a SavedModel of a frozen graph",
        )
    raise NotASavedModel(f"{path} is a file, not a SavedModel folder")


def describe_non_model(folder: Path) -> SmsurgeryError:
    """Say what a folder holds instead of a SavedModel, as precisely as we can."""
    for name in SAVED_MODEL_FILES:
        candidate = folder / name
        if candidate.is_symlink() and not candidate.exists():
            return NotASavedModel(f"{candidate} is a symlink loop or points at nothing")
    try:
        names = sorted(child.name for child in folder.iterdir())
    except PermissionError:
        return PathNotFound(f"cannot read {folder}: permission denied")
    name_set = set(names)
    if "export.meta" in name_set and any(re.match(r"export-\d+-of-\d+$", n) for n in names):
        what = "a SessionBundle export (export.meta + export-* shards), not a SavedModel"
        return NotASavedModel(f"{folder} holds {what}", hint="re-export it with TensorFlow as a SavedModel")
    if "export.meta" in name_set:
        what = "an old TF1 export (export.meta + checkpoint), not a SavedModel"
        return NotASavedModel(f"{folder} holds {what}", hint="re-export it with TensorFlow as a SavedModel")
    if any(n.endswith(".meta") for n in names) or "checkpoint" in name_set:
        return NotASavedModel(
            f"{folder} holds a TF1 checkpoint, not a SavedModel",
            hint=f"smsurgery convert {folder} BASE makes one",
        )
    sub = [n for n in names if (folder / n).is_dir() and has_saved_model(folder / n)]
    if sub:
        return NotASavedModel(
            f"{folder} has no saved_model.pb and no integer version folders",
            hint=f"SavedModels in sub-folders: {listing(sub)}",
        )
    return NotASavedModel(
        f"{folder} has no saved_model.pb and no integer version folders",
        hint=f"it holds: {listing(names[:12], empty='nothing')}" + (" ..." if len(names) > 12 else ""),
    )


def _nearest_existing(path: Path) -> str:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        names = sorted(child.name for child in parent.iterdir() if not child.name.startswith("."))
    except OSError:
        return f"{parent} exists"
    shown = listing(names[:10], empty="nothing")
    return f"{parent} holds: {shown}" + (" ..." if len(names) > 10 else "")
