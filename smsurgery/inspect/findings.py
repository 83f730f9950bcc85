"""What `check` can find, each with a stable code, a severity and a usual fix.

The catalog is the contract: codes never change meaning, docs/check.md lists
every one, and a test makes sure the two agree. `error` means TensorFlow
Serving will refuse the version or fail its requests; `warning` means it will
load but something is likely wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smsurgery.core.errors import InternalError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Code:
    severity: str
    title: str
    fix: str  # the usual repair; a finding may say something more precise


CATALOG: dict[str, Code] = {
    # the model base, as Serving's file-system source sees it
    "SM-BASE-NO-VERSIONS": Code(ERROR, "no version folder Serving can read", "publish into BASE/1 (any integer name)"),
    "SM-BASE-DUPLICATE-VERSION": Code(
        WARNING, "two folders parse to one version number", "remove or renumber the folder Serving ignores"
    ),
    "SM-BASE-SKIPPED-NAME": Code(
        WARNING, "a numeric-looking folder Serving skips", "rename it to an integer from 0 to 9223372036854775807"
    ),
    "SM-BASE-NEGATIVE-VERSION": Code(
        WARNING, "a folder Serving reads as a negative version", "renumber it with a non-negative integer"
    ),
    "SM-BASE-NOT-A-SAVEDMODEL": Code(
        ERROR, "a version folder without saved_model.pb", "remove the folder or publish a SavedModel into it"
    ),
    "SM-FILES-BROKEN": Code(ERROR, "a file of the version is missing or unsafe", "re-export the model"),
    # meta graphs and tags
    "SM-TAGS-MISSING": Code(ERROR, "no meta graph with Serving's tag set", "smsurgery tags set PATH serve --tags OLD"),
    "SM-TAGS-DUPLICATE": Code(
        WARNING, "two meta graphs share one tag set", "smsurgery tags set PATH NEW --tags OLD on the one to keep apart"
    ),
    # signatures
    "SM-SIG-NONE": Code(WARNING, "no signature to serve", "smsurgery signature add, or re-export with signatures"),
    "SM-SIG-NO-DEFAULT": Code(
        WARNING, "no serving_default signature", "smsurgery signature rename PATH KEY serving_default"
    ),
    "SM-SIG-TENSOR-MISSING": Code(
        ERROR, "a signature names a tensor the graph lacks", "smsurgery alias repoint PATH SIGNATURE ALIAS TENSOR"
    ),
    "SM-SIG-UNFED-INPUT": Code(
        ERROR, "an output needs a placeholder that is not an input", "smsurgery signature add the missing input"
    ),
    "SM-SIG-CLASSIFY": Code(ERROR, "a classify signature breaks classifier.cc's rules", "fix the signature"),
    "SM-SIG-REGRESS": Code(ERROR, "a regress signature breaks regressor.cc's rules", "fix the signature"),
    "SM-SIG-EXAMPLES-INPUT": Code(
        WARNING, "a classify/regress input that is not serialized tf.Examples", "call it with Predict, or fix it"
    ),
    "SM-SIG-REST-DTYPE": Code(
        WARNING, "a dtype Serving's REST API cannot encode", "smsurgery input cast PATH ALIAS DTYPE, or use gRPC"
    ),
    # ops and graph versions against a TensorFlow release
    "SM-OPS-UNREGISTERED": Code(
        ERROR, "an op the target TensorFlow does not register", "serve with a build that links the op library"
    ),
    "SM-GRAPH-MIN-CONSUMER": Code(ERROR, "the graph needs a newer TensorFlow", "serve with a newer TensorFlow Serving"),
    "SM-GRAPH-PRODUCER-OLD": Code(ERROR, "the graph is older than the target accepts", "smsurgery reexport PATH"),
    "SM-GRAPH-PRODUCER-NEWER": Code(
        WARNING, "the graph was written by a newer TensorFlow", "serve with the TensorFlow release that wrote it"
    ),
    # batching
    "SM-BATCH-CONFIG": Code(ERROR, "batching parameters Serving refuses", "fix the batching parameters file"),
    "SM-BATCH-DIM0": Code(
        ERROR, "a tensor whose dimension 0 is not the batch", "smsurgery shape set PATH ALIAS DIMS --batch dynamic"
    ),
    "SM-BATCH-UNKNOWN-RANK": Code(
        WARNING, "a tensor of unknown rank, batched blindly", "smsurgery shape set PATH ALIAS DIMS"
    ),
    # warmup
    "SM-WARMUP-CORRUPT": Code(ERROR, "the warmup file is not a valid TFRecord file", "smsurgery warmup PATH"),
    "SM-WARMUP-TOO-MANY": Code(ERROR, "more than 1000 warmup records", "smsurgery warmup PATH --count 1000"),
    "SM-WARMUP-LOG-TYPE": Code(ERROR, "a warmup record of a type Serving rejects", "smsurgery warmup PATH"),
    "SM-WARMUP-REQUEST": Code(ERROR, "a warmup request that does not fit the model", "smsurgery warmup PATH"),
    # size
    "SM-SIZE-OVER-1GB": Code(WARNING, "saved_model.pb over 1 GB", "move large constants into variables"),
    "SM-SIZE-OVER-2GB": Code(ERROR, "saved_model.pb over protobuf's 2 GB limit", "move large constants into variables"),
    "SM-SIZE-LARGE-CONST": Code(WARNING, "a large Const in the graph", "move it into a variable"),
    # placement and compilation
    "SM-XLA-JIT": Code(
        WARNING, "a function compiled with XLA", "serve with --xla_cpu_compilation_enabled, or re-export without jit"
    ),
    "SM-DEVICE-GPU": Code(WARNING, "nodes pinned to a GPU", "smsurgery devices strip PATH"),
    # fingerprint
    "SM-FINGERPRINT-MISSING": Code(WARNING, "a TF2 export without fingerprint.pb", "smsurgery reexport PATH"),
    "SM-FINGERPRINT-STALE": Code(WARNING, "fingerprint.pb of another saved_model.pb", "smsurgery reexport PATH"),
    "SM-TF1-UNRESTORED": Code(
        ERROR, "a signature reads variables the TF1 loader never restores", "smsurgery reexport PATH"
    ),
    # checkpoint
    "SM-CKPT-EXTRA": Code(WARNING, "the checkpoint holds tensors the graph does not restore", "smsurgery prune PATH"),
    "SM-CKPT-MISSING": Code(ERROR, "the graph restores a tensor the checkpoint lacks", "re-export the model"),
    # risky ops, as `scan` reports them
    "SM-SCAN-RISKY-OP": Code(WARNING, "an op that touches files, the network or runs code", "smsurgery scan PATH"),
    # --load: what TensorFlow itself said
    "SM-LOAD-FAILED": Code(ERROR, "the TF1 session loader cannot load the version", "smsurgery reexport PATH"),
    "SM-LOAD-WARMUP-FAILED": Code(ERROR, "a warmup record fails when replayed", "smsurgery warmup PATH"),
    "SM-LOAD-SIGNATURE-FAILED": Code(ERROR, "a signature fails on a generated request", "smsurgery reexport PATH"),
    # models.config (config check)
    "SM-CONFIG-DUPLICATE-NAME": Code(ERROR, "a model name listed twice", "give each model its own name"),
    "SM-CONFIG-RELATIVE-PATH": Code(ERROR, "a relative base_path", "smsurgery config write with absolute bases"),
    "SM-CONFIG-PLATFORM": Code(ERROR, "a model_platform Serving does not know", 'set model_platform: "tensorflow"'),
    "SM-CONFIG-BASE-MISSING": Code(ERROR, "a base_path that does not exist", "fix base_path"),
    "SM-CONFIG-POLICY-VERSION": Code(
        ERROR, "a specific version policy naming a missing version", "list versions that exist"
    ),
    "SM-CONFIG-LABEL": Code(ERROR, "a version label pointing at a version Serving will not serve", "fix the label"),
}


@dataclass(frozen=True)
class Finding:
    """One problem, about one object, with the fix that repairs it."""

    code: str
    subject: str  # what it is about: "signature 'predict'", "op MyCustomOp", "version 01"
    message: str
    fix: str

    @property
    def severity(self) -> str:
        return CATALOG[self.code].severity

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }


def finding(code: str, subject: str, message: str, fix: str | None = None) -> Finding:
    if code not in CATALOG:
        raise InternalError(f"finding code {code} is not in the catalog")
    return Finding(code=code, subject=subject, message=message, fix=fix or CATALOG[code].fix)


def exit_status(findings: Iterable[Finding]) -> int:
    """0 clean, 1 warnings only, 3 errors (2 stays for a command that failed)."""
    severities = {f.severity for f in findings}
    if ERROR in severities:
        return 3
    return 1 if WARNING in severities else 0


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    items = list(findings)
    return {ERROR: sum(f.severity == ERROR for f in items), WARNING: sum(f.severity == WARNING for f in items)}
