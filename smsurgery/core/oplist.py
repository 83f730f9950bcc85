"""Which ops a TensorFlow release registers, without starting TensorFlow.

The op registry lives in TensorFlow's shared library and is filled only by
`import tensorflow` (2.5 s, ~500 MB). `check` must answer in well under a
second, so the project ships each release's list (`oplists/tf-X.Y.txt`,
written by `tools/gen_oplist.py` from TensorFlow's own registry) and reads
the installed release's version from its package metadata, which does not
import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smsurgery.core.errors import SmsurgeryError, listing

OPLIST_DIR = Path(__file__).resolve().parent / "oplists"
_NAME = re.compile(r"^tf-(\d+)\.(\d+)\.txt$")


@dataclass(frozen=True)
class OpList:
    """The ops of one TensorFlow release and its GraphDef version window."""

    version: str  # "2.21"
    ops: frozenset[str]
    producer: int  # TF_GRAPH_DEF_VERSION of that release
    min_consumer: int
    min_producer: int


def shipped_versions() -> list[str]:
    """The releases we have lists for, oldest first."""
    found = []
    for path in OPLIST_DIR.glob("tf-*.txt"):
        match = _NAME.match(path.name)
        if match:
            found.append((int(match[1]), int(match[2])))
    return [f"{major}.{minor}" for major, minor in sorted(found)]


def installed_version() -> str | None:
    """`2.21` for the installed TensorFlow, read from its metadata (no import).

    importlib.metadata is imported here: it costs `show`, which never asks, ~10 ms.
    """
    import importlib.metadata

    for distribution in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos"):
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        return ".".join(version.split(".")[:2])
    return None


def default_target() -> str:
    """The installed release if we ship its list, else the newest list we ship."""
    versions = shipped_versions()
    installed = installed_version()
    return installed if installed in versions else versions[-1]


@cache
def load(version: str | None = None) -> OpList:
    """The op list of `version` (default: `default_target()`); exit 2 naming what exists."""
    version = version or default_target()
    path = OPLIST_DIR / f"tf-{version}.txt"
    if not _NAME.match(path.name) or not path.is_file():
        raise SmsurgeryError(
            f"no op list for TensorFlow {version}",
            hint=f"--target-tf takes one of: {listing(shipped_versions())}",
        )
    header: dict[str, int] = {}
    ops = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            words = line[1:].split()
            if len(words) == 2 and words[1].isdigit():
                header[words[0]] = int(words[1])
        elif line.strip():
            ops.append(line.strip())
    return OpList(
        version=version,
        ops=frozenset(ops),
        producer=header.get("producer", 0),
        min_consumer=header.get("min_consumer", 0),
        min_producer=header.get("min_producer", 0),
    )
