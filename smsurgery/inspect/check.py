"""`check`: will TensorFlow Serving load and serve this version?

Reads the model base the way Serving's file-system source does (versions as
int64, duplicates, the version each policy serves), then the chosen
version's protos: tags, signatures, ops against a TensorFlow release, graph
versions, batching, warmup, size, XLA, device pins, checkpoint, fingerprint
and the risky ops `scan` reports. Pure and TF-free; `load=True` adds what
Serving does at load time, with the real TensorFlow (`graph/check_load.py`).
Each family of rules lives in its own module; this one only orders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core import oplist
from smsurgery.core.errors import CorruptModel, NotASavedModel
from smsurgery.core.integrity import ERROR as INTEGRITY_ERROR
from smsurgery.core.integrity import check_version
from smsurgery.core.layout import (
    ModelRef,
    VersionListing,
    has_saved_model,
    scan_versions,
    split_version_suffix,
)
from smsurgery.core.model import DEFAULT_TAGS, MetaGraph, SavedModelFile, locate, parse_saved_model, tag_set_text
from smsurgery.inspect.check_graph import (
    checkpoint_findings,
    device_findings,
    graph_version_findings,
    op_findings,
    size_findings,
    tf1_restore_findings,
    xla_findings,
)
from smsurgery.inspect.check_signatures import signature_findings
from smsurgery.inspect.check_warmup import warmup_findings
from smsurgery.inspect.findings import Finding, counts, exit_status, finding
from smsurgery.inspect.scan import scan_meta_graph
from smsurgery.serving.batching import batchability_findings, parameter_findings, parse_batching_file

CHECK_SCHEMA = "smsurgery.check/1"
FINGERPRINT = "fingerprint.pb"


@dataclass
class CheckReport:
    path: str
    base: str | None
    version: int | None
    tags: tuple[str, ...]
    target_tf: str
    versions: dict[str, Any] = field(default_factory=dict)  # what each policy serves
    findings: list[Finding] = field(default_factory=list)
    loaded: bool | None = None  # --load: did the TF1 loader load it (None: not asked)

    @property
    def exit_status(self) -> int:
        return exit_status(self.findings)

    @property
    def verdict(self) -> str:
        return {0: "clean", 1: "warnings", 3: "errors"}[self.exit_status]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CHECK_SCHEMA,
            "path": self.path,
            "base": self.base,
            "version": self.version,
            "tags": list(self.tags),
            "target_tf": self.target_tf,
            "versions": self.versions,
            "loaded": self.loaded,
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "counts": counts(self.findings),
            "findings": [f.to_json() for f in self.findings],
        }


def check(
    path: str | Path,
    *,
    tags: tuple[str, ...] | None = None,
    target_tf: str | None = None,
    batching: str | Path | None = None,
    load: bool = False,
) -> CheckReport:
    """Check one model base or version; bad options (op list, batching file) raise before any work."""
    target = oplist.load(target_tf)
    params = parse_batching_file(batching) if batching is not None else None
    wanted = tuple(tags) if tags else DEFAULT_TAGS
    ref, listing = _locate(path)
    report = CheckReport(
        path=ref.location if ref else str(path),
        base=str(ref.base_location) if ref and ref.base_location is not None else None,
        version=ref.version if ref else None,
        tags=wanted,
        target_tf=target.version,
    )
    if listing is not None:
        report.versions = _policies(listing)
        report.findings += base_findings(listing)
    if ref is None:
        return report
    if not has_saved_model(ref.version_dir):
        report.findings.append(
            finding("SM-BASE-NOT-A-SAVEDMODEL", f"version {ref.version}", f"{ref.version_dir} has no saved_model.pb")
        )
        return report
    try:
        model = SavedModelFile(ref, parse_saved_model(ref.saved_model_file))
    except CorruptModel as error:
        report.findings.append(finding("SM-FILES-BROKEN", ref.saved_model_file.name, error.message))
        return report
    if params is not None:
        report.findings += parameter_findings(params, str(batching))
    report.findings += model_findings(model, wanted, target, batching=params is not None)
    if load:
        from smsurgery.graph.check_load import load_findings

        failures, report.loaded = load_findings(model, wanted)
        report.findings += failures
    return report


def _locate(path: str | Path) -> tuple[ModelRef | None, VersionListing | None]:
    """The version to check, and the listing of its base (None for a bare folder)."""
    folder, version = split_version_suffix(path)
    if folder.is_dir() and version is None and not has_saved_model(folder):
        listing = scan_versions(folder)
        if listing.newest is None:
            return None, listing
        return ModelRef(version_dir=listing.versions[listing.newest], base=folder, version=listing.newest), listing
    ref = locate(path)
    listing = scan_versions(ref.base) if ref.base is not None else None
    return ref, listing


def _policies(listing: VersionListing) -> dict[str, Any]:
    return {
        "all": sorted(listing.versions),
        "latest": listing.newest,
        "folders": {str(v): p.name for v, p in listing.versions.items()},
    }


def base_findings(listing: VersionListing) -> list[Finding]:
    found = []
    if not listing.versions:
        found.append(
            finding(
                "SM-BASE-NO-VERSIONS",
                "model base",
                "No versions of servable found under base path; did you forget to name your leaf directory as "
                "a number (eg. '/1/')?",
            )
        )
    for number, ignored in sorted(listing.duplicates.items()):
        kept = listing.versions[number].name
        names = ", ".join(p.name for p in ignored)
        found.append(
            finding(
                "SM-BASE-DUPLICATE-VERSION",
                f"version {number}",
                f"Duplicate version directories detected: Serving loads version {number} from {kept}, "
                f"{names} will be ignored",
            )
        )
    for name in listing.skipped:
        found.append(finding("SM-BASE-SKIPPED-NAME", f"folder {name}", "Serving does not read it as a version (int64)"))
    for number in sorted(v for v in listing.versions if v < 0):
        found.append(
            finding(
                "SM-BASE-NEGATIVE-VERSION",
                f"folder {listing.versions[number].name}",
                f"Serving reads it as version {number}, older than every other version",
            )
        )
    return found


def model_findings(
    model: SavedModelFile, tags: tuple[str, ...], target: oplist.OpList, *, batching: bool = False
) -> list[Finding]:
    found = [
        finding("SM-FILES-BROKEN", problem.path, problem.message)
        for problem in check_version(model)
        if problem.severity == INTEGRITY_ERROR
    ]
    found += tag_findings(model, tags)
    meta = _served_meta_graph(model, tags)
    if meta is None:
        return found
    where = str(model.ref)
    found += signature_findings(meta, where)
    found += op_findings(meta, target)
    found += graph_version_findings(meta, target)
    if batching:
        found += batchability_findings(meta, where)
    found += warmup_findings(model.path, meta)
    found += size_findings(model, meta)
    found += xla_findings(meta)
    found += device_findings(meta, where)
    if not any(f.code == "SM-FILES-BROKEN" for f in found):
        found += checkpoint_findings(model, meta)
    found += tf1_restore_findings(meta, where)
    found += fingerprint_findings(model, meta)
    found += risky_op_findings(meta, where)
    return found


def _served_meta_graph(model: SavedModelFile, tags: tuple[str, ...]) -> MetaGraph | None:
    """The meta graph Serving would load (the first with the tag set); the only one if none has it."""
    metas = list(model.proto.meta_graphs)
    for meta in metas:
        if set(meta.meta_info_def.tags) == set(tags):
            return MetaGraph(model, meta)
    return MetaGraph(model, metas[0]) if len(metas) == 1 else None


def tag_findings(model: SavedModelFile, tags: tuple[str, ...]) -> list[Finding]:
    found = []
    sets = [frozenset(t) for t in model.tag_sets]
    available = "; ".join("[" + tag_set_text(t) + "]" for t in model.tag_sets)
    if frozenset(tags) not in sets:
        old = tag_set_text(model.tag_sets[0]) if model.tag_sets else "OLD"
        found.append(
            finding(
                "SM-TAGS-MISSING",
                f"tag set [{tag_set_text(tags)}]",
                f"MetaGraphDef associated with tags '{tag_set_text(tags)}' could not be found in SavedModel; "
                f"Serving refuses to load the version (available tag sets: {available})",
                f"smsurgery tags set {model.ref} {','.join(tags)} --tags {old}",
            )
        )
    for tag_set in sorted({s for s in sets if sets.count(s) > 1}, key=sorted):
        text = tag_set_text(sorted(tag_set))
        found.append(
            finding(
                "SM-TAGS-DUPLICATE",
                f"tag set [{text}]",
                f"{sets.count(tag_set)} meta graphs have tags [{text}]; TensorFlow loads the first, never the others",
            )
        )
    return found


def fingerprint_findings(model: SavedModelFile, meta: MetaGraph) -> list[Finding]:
    from smsurgery.core.fingerprint import fingerprint_problem

    path = model.path / FINGERPRINT
    if not path.is_file():
        if meta.kind == "tf2" and _written_by(meta) >= (2, 12):
            return [
                finding(
                    "SM-FINGERPRINT-MISSING",
                    FINGERPRINT,
                    "a TF2 export without fingerprint.pb (TensorFlow >= 2.12 writes one); "
                    "model registries and caches keyed on it cannot tell versions apart",
                    f"smsurgery reexport {model.ref}",
                )
            ]
        return []
    problem = fingerprint_problem(path, model.ref.saved_model_file)
    return [finding("SM-FINGERPRINT-STALE", FINGERPRINT, problem, f"smsurgery reexport {model.ref}")] if problem else []


def _written_by(meta: MetaGraph) -> tuple[int, int]:
    """(major, minor) of the TensorFlow that wrote the meta graph; (0, 0) if it does not say."""
    parts = meta.proto.meta_info_def.tensorflow_version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


def risky_op_findings(meta: MetaGraph, where: str) -> list[Finding]:
    scan = scan_meta_graph(meta.skim, graph_def=meta.graph_def)
    groups = [(f"signature '{k}'", v) for k, v in scan.signatures.items()]
    groups += [(f"init op ({k})", v) for k, v in scan.init.items()]
    found = []
    for group, items in groups:
        for op in sorted({item.op for item in items}):
            first = next(item for item in items if item.op == op)
            node = first.node if first.function is None else f"{first.function}/{first.node}"
            found.append(
                finding(
                    "SM-SCAN-RISKY-OP",
                    f"{group} op {op}",
                    f"{op} ({first.category}: {first.reason}) runs when Serving runs it, at {node}",
                    f"smsurgery scan {where}",
                )
            )
    return found


def check_config_model(base: Path, tags: tuple[str, ...] | None = None) -> CheckReport:
    """`config check` runs this on every model it names."""
    try:
        return check(base, tags=tags)
    except NotASavedModel as error:
        report = CheckReport(path=str(base), base=str(base), version=None, tags=DEFAULT_TAGS, target_tf="")
        report.findings.append(finding("SM-BASE-NO-VERSIONS", "model base", error.message))
        return report
