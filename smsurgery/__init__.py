"""smsurgery: surgery on TensorFlow SavedModels served by TensorFlow Serving.

Importing this package never starts the TensorFlow runtime; only the
modules under `smsurgery.graph` do, and only when called. The public names
below are loaded on first use, so `import smsurgery` (and every read-only
command) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from smsurgery.core.errors import InternalError, SmsurgeryError

__version__ = "0.1.0"

# Public name -> module that defines it. Since the modules live in
# subpackages, a function may share its module's name (`diff`, `scan`,
# `check`): importing `smsurgery.inspect.diff` sets an attribute on
# `smsurgery.inspect`, never on `smsurgery`, so these names cannot flip meaning.
_EXPORTS = {
    "describe": "smsurgery.inspect.describe",
    "ModelRef": "smsurgery.core.layout",
    "resolve": "smsurgery.core.layout",
    "read": "smsurgery.core.model",
    "MetaGraph": "smsurgery.core.model",
    "SavedModelFile": "smsurgery.core.model",
    "SignatureView": "smsurgery.core.model",
    "TensorView": "smsurgery.core.model",
    "Draft": "smsurgery.edits.draft",
    "publish": "smsurgery.edits.draft",
    "edit": "smsurgery.edits.draft",
    "EditResult": "smsurgery.edits.draft",
    "PublishTarget": "smsurgery.publishing.target",
    "AddSignature": "smsurgery.edits.kinds",
    "RenameSignature": "smsurgery.edits.kinds",
    "RemoveSignature": "smsurgery.edits.kinds",
    "SetDefault": "smsurgery.edits.kinds",
    "RenameAlias": "smsurgery.edits.kinds",
    "AddOutput": "smsurgery.edits.kinds",
    "RemoveOutput": "smsurgery.edits.kinds",
    "Repoint": "smsurgery.edits.kinds",
    "diff": "smsurgery.inspect.diff",
    "scan": "smsurgery.inspect.scan",
    "check": "smsurgery.inspect.check",
    "compare": "smsurgery.graph.verify",
    "add_image_input": "smsurgery.graph.image",
    "add_example_input": "smsurgery.graph.example",
    "add_labels": "smsurgery.graph.labels",
    "convert": "smsurgery.graph.convert",
    "build_request": "smsurgery.serving.request_body",
    "publish_warmup": "smsurgery.serving.warmup",
    "run_body": "smsurgery.graph.run",
}

__all__ = ["InternalError", "SmsurgeryError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smsurgery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
