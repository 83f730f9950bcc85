"""smsurgery: surgery on TensorFlow SavedModels served by TensorFlow Serving.

Importing this package never starts the TensorFlow runtime; only the
modules under `smsurgery.graph` do, and only when called. The public names
below are loaded on first use, so `import smsurgery` (and every read-only
command) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from smsurgery.describe import describe
from smsurgery.errors import InternalError, SmsurgeryError

__version__ = "0.1.0"

# Public name -> module that defines it. Functions named like their module
# (`smsurgery.diff.diff`, `smsurgery.scan.scan`, `smsurgery.validate.validate`)
# are reached through the module: the import system sets `smsurgery.diff` to
# the module whenever it is imported, so a lazy alias would flip meaning.
_EXPORTS = {
    "ModelRef": "smsurgery.layout",
    "resolve": "smsurgery.layout",
    "read": "smsurgery.model",
    "MetaGraph": "smsurgery.model",
    "SavedModelFile": "smsurgery.model",
    "SignatureView": "smsurgery.model",
    "TensorView": "smsurgery.model",
    "edit": "smsurgery.editing",
    "EditResult": "smsurgery.editing",
    "AddSignature": "smsurgery.edits",
    "RenameSignature": "smsurgery.edits",
    "RemoveSignature": "smsurgery.edits",
    "SetDefault": "smsurgery.edits",
    "RenameAlias": "smsurgery.edits",
    "AddOutput": "smsurgery.edits",
    "RemoveOutput": "smsurgery.edits",
    "Repoint": "smsurgery.edits",
    "compare": "smsurgery.graph.verify",
    "add_image_input": "smsurgery.graph.image",
    "convert": "smsurgery.graph.convert",
    "build_request": "smsurgery.request_body",
    "publish_warmup": "smsurgery.warmup",
    "run_body": "smsurgery.graph.run",
}

__all__ = ["InternalError", "SmsurgeryError", "describe", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smsurgery' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
