"""Refuse to verify a model that cannot be loaded within the machine's memory, before loading it.

Verification loads versions with TensorFlow, one at a time. A TF1 load of a
SavedModel costs, as measured with TF 2.21 on x86-64 (bench/scale.py):

    ~0.7 GB                  TensorFlow itself
  + ~6 KB per node           of the main graph (Python Operation objects, the C++ graph)
  + ~5 bytes per byte        of graph_def (the proto parsed in Python, imported, constants copied)
  + ~1.2 bytes per byte      of variables (restored tensors)

The estimate is compared with what the machine can give: `MemAvailable`
of /proc/meminfo, the cgroup's `memory.max` less `memory.current` when the
process is confined, and `SMSURGERY_MEMORY_LIMIT` (bytes, or with a K/M/G
suffix) when the user sets one. Verification is refused when the estimate
exceeds that budget, with one line that names `--no-verify`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from smsurgery.core.errors import VerificationFailed
from smsurgery.core.skim import Skim
from smsurgery.core.wire import varint

TENSORFLOW_BYTES = 700 << 20
BYTES_PER_NODE = 6_144
BYTES_PER_GRAPH_BYTE = 5.0
BYTES_PER_VARIABLE_BYTE = 1.2
LIMIT_VARIABLE = "SMSURGERY_MEMORY_LIMIT"


class TooLargeToVerify(VerificationFailed):
    """Verification would need more memory than the machine has."""


@dataclass(frozen=True)
class LoadEstimate:
    nodes: int
    graph_bytes: int
    variable_bytes: int

    @property
    def bytes(self) -> int:
        return int(
            TENSORFLOW_BYTES
            + BYTES_PER_NODE * self.nodes
            + BYTES_PER_GRAPH_BYTE * self.graph_bytes
            + BYTES_PER_VARIABLE_BYTE * self.variable_bytes
        )


def count_nodes(skimmed: Skim, position: int) -> int:
    """Top-level `node` fields of meta graph `position`'s GraphDef, counted by walking tags only."""
    try:
        return _count_nodes(skimmed, position)
    finally:
        skimmed.release()  # the walk touched every page of a graph of small nodes


def _count_nodes(skimmed: Skim, position: int) -> int:
    data, count = skimmed.whole(), 0  # every node's tag: a remote file read by ranges is downloaded first
    for span in skimmed.file_layout.meta_graphs[position].graph_spans:
        at, end = span.body, span.end
        while at < end:
            tag = varint(data, at, end)
            if tag is None:
                return count
            key, at = tag
            wire_type = key & 7
            if wire_type == 2:
                length = varint(data, at, end)
                if length is None:
                    return count
                at = length[1] + length[0]
            elif wire_type == 0:
                value = varint(data, at, end)
                at = end if value is None else value[1]
            else:
                at += 8 if wire_type == 1 else 4
            count += (key >> 3) == 1
    return count


def estimate(version_dir: Path, skimmed: Skim | None, position: int) -> LoadEstimate:
    """What one TF1 load of this version costs (the graph counted from the file without parsing it)."""
    pb = version_dir / "saved_model.pb"
    graph_bytes = pb.stat().st_size if pb.is_file() else 0
    nodes = 0
    if skimmed is not None:
        graph_bytes = skimmed.file_layout.meta_graphs[position].graph_bytes
        nodes = count_nodes(skimmed, position)
    else:
        nodes = graph_bytes // 200  # a text or unwalkable file: assume small nodes
    variables = version_dir / "variables"
    variable_bytes = sum(p.stat().st_size for p in variables.glob("variables.data-*")) if variables.is_dir() else 0
    return LoadEstimate(nodes=nodes, graph_bytes=graph_bytes, variable_bytes=variable_bytes)


def _parse_size(text: str) -> int | None:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in "KMG" else text
    return int(float(digits) * scale) if digits.replace(".", "", 1).isdigit() else None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def available_bytes() -> int | None:
    """What this process can still allocate: the smallest of MemAvailable, the cgroup's room, the user's limit."""
    budgets: list[int] = []
    meminfo = _read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            budgets.append(int(line.split()[1]) * 1024)
    limit, current = _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
    if limit and current and limit.strip().isdigit() and current.strip().isdigit():
        budgets.append(max(0, int(limit) - int(current)))
    user = os.environ.get(LIMIT_VARIABLE)
    if user:
        parsed = _parse_size(user)
        if parsed is not None:
            budgets.append(parsed)
    return min(budgets) if budgets else None


def require_memory_for(version_dir: Path, skimmed: Skim | None, position: int, *, what: str) -> LoadEstimate:
    """Raise `TooLargeToVerify` when one load of `version_dir` would not fit; else the estimate."""
    found = estimate(version_dir, skimmed, position)
    budget = available_bytes()
    if budget is not None and found.bytes > budget:
        raise TooLargeToVerify(
            f"verifying {what} needs about {found.bytes / (1 << 30):.1f} GB of memory (one TensorFlow load of "
            f"{found.nodes} nodes, a {found.graph_bytes / (1 << 20):.0f} MB graph and "
            f"{found.variable_bytes / (1 << 20):.0f} MB of variables) but only {budget / (1 << 30):.1f} GB "
            "is available",
            hint="pass --no-verify to publish without verification, or free memory and retry",
        )
    return found
