"""`models.config`: write one for some model bases, and check one as Serving would.

A `ModelServerConfig` text proto (tensorflow_serving/config/
model_server_config.proto, from tensorflow-serving-api's own descriptors in
our TF-free pool). `server_core.cc` refuses a config whose model names repeat
("Illegal to list model X multiple times"), whose base paths are relative
without `--model_config_file_base_path` ("Expected model X to have an
absolute path or URI"), or whose platform is missing or unknown; a label
may only name a version that is being served, and a `specific` policy that
names a missing version serves nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from smsurgery.core import protos
from smsurgery.core.errors import SmsurgeryError, StorageError, listing
from smsurgery.core.layout import check_new_version, scan_versions
from smsurgery.core.textfile import read_config_text
from smsurgery.inspect.findings import Finding, exit_status, finding
from smsurgery.storage.locate import remote_base_skeleton
from smsurgery.storage.url import is_remote

_CONFIG_PROTO = "tensorflow_serving/config/model_server_config.proto"
CONFIG_CHECK_SCHEMA = "smsurgery.config_check/1"
PLATFORM = "tensorflow"


class ConfigFileError(SmsurgeryError):
    """A models.config that does not parse."""


def config_class() -> type[Any]:
    return protos.message_class(_CONFIG_PROTO, "tensorflow.serving.ModelServerConfig")


@dataclass(frozen=True)
class Policy:
    kind: str  # latest | all | specific
    versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Policy:
        if text in ("latest", "all"):
            return cls(text)
        if text.startswith("specific:"):
            try:
                numbers = tuple(check_new_version(int(v)) for v in text.split(":", 1)[1].split(",") if v.strip())
            except ValueError as error:
                raise SmsurgeryError(f"--policy {text}: versions must be integers") from error
            if numbers:
                return cls("specific", numbers)
        raise SmsurgeryError(f"unknown --policy '{text}'", hint="choose latest, all, or specific:1,2")


def parse_labels(items: list[str]) -> dict[str, int]:
    labels: dict[str, int] = {}
    for item in items:
        name, _, number = item.partition("=")
        if not name or not number.strip().isdigit():
            raise SmsurgeryError(f"--label {item}: expected NAME=VERSION, e.g. stable=3")
        labels[name] = check_new_version(int(number))
    return labels


def served_versions(policy: Any, available: list[int]) -> list[int]:
    """What Serving's file-system source aspires under a ServableVersionPolicy proto."""
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return sorted(available)
    if choice == "specific":
        return sorted(set(policy.specific.versions) & set(available))
    count = max(policy.latest.num_versions, 1) if choice == "latest" else 1
    return sorted(available)[-count:] if available else []


def write_config(bases: list[str], names: list[str], policy: Policy, labels: dict[str, int]) -> str:
    """The text of a ModelServerConfig for these bases; refuses what Serving would refuse."""
    if names and len(names) != len(bases):
        raise SmsurgeryError(f"{len(names)} --name for {len(bases)} bases", hint="give one --name per BASE, or none")
    config = config_class()()
    for index, text in enumerate(bases):
        base, available = _base_versions(text)
        if not available:
            raise SmsurgeryError(f"{base} has no version folder Serving can read")
        model = config.model_config_list.config.add(
            name=names[index] if names else base.rstrip("/").rsplit("/", 1)[-1], base_path=base, model_platform=PLATFORM
        )
        if policy.kind == "all":
            model.model_version_policy.all.SetInParent()
        elif policy.kind == "specific":
            missing = sorted(set(policy.versions) - set(available))
            if missing:
                raise SmsurgeryError(f"{base} has no version {missing[0]}", hint=f"versions: {listing(available)}")
            model.model_version_policy.specific.versions.extend(policy.versions)
        served = served_versions(model.model_version_policy, available)
        for label, number in labels.items():
            if number not in served:
                raise SmsurgeryError(
                    f"label {label}={number}: {base} would not serve version {number}",
                    hint=f"served versions: {listing(served)}",
                )
            model.version_labels[label] = number
    seen = [m.name for m in config.model_config_list.config]
    duplicates = sorted({n for n in seen if seen.count(n) > 1})
    if duplicates:
        raise SmsurgeryError(f"two models named {duplicates[0]}", hint="give each BASE its own --name")
    return text_format.MessageToString(config)


def _base_versions(text: str) -> tuple[str, list[int]]:
    """A base as Serving's base_path names it (absolute folder, or s3:// / gs:// URL), and its versions."""
    if is_remote(text):
        url, skeleton = remote_base_skeleton(text)
        return url, sorted(scan_versions(skeleton).versions)
    base = Path(text).absolute()
    if not base.is_dir():
        raise SmsurgeryError(f"no model base {base}")
    return str(base), sorted(scan_versions(base).versions)


def parse_config(path: str | Path) -> Any:
    path = Path(path)
    text = read_config_text(path, "models.config")
    config = config_class()()
    try:
        text_format.Parse(text, config, descriptor_pool=protos.pool())
    except text_format.ParseError as error:
        where = f"{error.GetLine()}:{error.GetColumn()}" if error.GetLine() is not None else "?"
        detail = str(error).split(" : ", 1)[-1]
        raise ConfigFileError(f"{path}:{where}: not a ModelServerConfig text proto: {detail}") from error
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigFileError(f"{path} holds a custom_model_config, which only custom servers read")
    return config


@dataclass
class ModelEntry:
    name: str
    base_path: str
    versions: list[int]
    reports: list[Any] = field(default_factory=list)  # CheckReport per served version


@dataclass
class ConfigReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    models: list[ModelEntry] = field(default_factory=list)

    def all_findings(self) -> list[Finding]:
        return self.findings + [f for m in self.models for r in m.reports for f in r.findings]

    @property
    def exit_status(self) -> int:
        return exit_status(self.all_findings())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CONFIG_CHECK_SCHEMA,
            "path": self.path,
            "exit_status": self.exit_status,
            "findings": [f.to_json() for f in self.findings],
            "models": [
                {
                    "name": m.name,
                    "base_path": m.base_path,
                    "versions": m.versions,
                    "checks": [r.to_json() for r in m.reports],
                }
                for m in self.models
            ],
        }


def _is_absolute(uri: str) -> bool:
    return "://" in uri or uri.startswith("/")


def check_config(path: str | Path, *, root_dir: str | None = None, tags: tuple[str, ...] | None = None) -> ConfigReport:
    """Validate as server_core does, then `check` every version each model would serve."""
    from smsurgery.inspect.check import check

    config = parse_config(path)
    if root_dir is not None and not _is_absolute(root_dir):
        raise SmsurgeryError(f"--root-dir must be absolute (got {root_dir})")
    report = ConfigReport(path=str(path))
    seen: set[str] = set()
    for model in config.model_config_list.config:
        subject = f"model '{model.name}'"
        if model.name in seen:
            report.findings.append(
                finding("SM-CONFIG-DUPLICATE-NAME", subject, f"Illegal to list model {model.name} multiple times")
            )
            continue
        seen.add(model.name)
        report.findings += _platform_findings(model, subject)
        base = model.base_path
        if root_dir is None and not _is_absolute(base):
            report.findings.append(
                finding(
                    "SM-CONFIG-RELATIVE-PATH",
                    subject,
                    f"Expected model {model.name} to have an absolute path or URI; got base_path()={base}",
                )
            )
            continue
        if root_dir is not None and not _is_absolute(base):
            base = str(Path(root_dir) / base)
        if "://" in base and not is_remote(base):
            report.models.append(ModelEntry(model.name, base, []))  # hdfs:// and others: not checked here
            continue
        if not is_remote(base) and not Path(base).is_dir():
            report.findings.append(finding("SM-CONFIG-BASE-MISSING", subject, f"Could not find base path {base}"))
            continue
        entry = _model_entry(model, base, subject, report)
        entry.reports = [check(f"{base}@{v}", tags=tags) for v in entry.versions]
        report.models.append(entry)
    return report


def _platform_findings(model: Any, subject: str) -> list[Finding]:
    if model.model_type and model.model_platform:
        message = "Illegal setting both model_type (deprecated) and model_platform"
    elif model.model_type:
        return [] if model.model_type == 1 else [finding("SM-CONFIG-PLATFORM", subject, "model_type not supported")]
    elif not model.model_platform:
        message = "Illegal setting neither model_type (deprecated) nor model_platform"
    elif model.model_platform != PLATFORM:
        message = f"model_platform '{model.model_platform}' is not one a stock tensorflow_model_server has"
    else:
        return []
    return [finding("SM-CONFIG-PLATFORM", subject, message)]


def _model_entry(model: Any, base: str, subject: str, report: ConfigReport) -> ModelEntry:
    try:
        available = _base_versions(base)[1]
    except StorageError as error:  # a bucket's base that is not there: what Serving would log, as a finding
        report.findings.append(finding("SM-CONFIG-BASE-MISSING", subject, f"Could not find base path {base}: {error}"))
        return ModelEntry(model.name, base, [])
    served = served_versions(model.model_version_policy, available)
    if model.model_version_policy.WhichOneof("policy_choice") == "specific":
        for number in sorted(set(model.model_version_policy.specific.versions) - set(available)):
            report.findings.append(
                finding(
                    "SM-CONFIG-POLICY-VERSION",
                    subject,
                    f"Version {number} of servable {model.name}, which was requested to be served as a 'specific' "
                    f"version in the servable's version policy, was not found in the file system",
                )
            )
    for label, number in sorted(model.version_labels.items()):
        if number not in served:
            report.findings.append(
                finding(
                    "SM-CONFIG-LABEL",
                    f"{subject} label '{label}'",
                    f"Request to assign label to version {number} of model {model.name}, which is not currently "
                    f"available for inference (served: {listing(map(str, served))})",
                )
            )
    if not served:
        report.findings.append(finding("SM-BASE-NO-VERSIONS", subject, f"no version to serve under {base}"))
    return ModelEntry(model.name, base, served)
