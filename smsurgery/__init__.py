"""smsurgery: surgery on TensorFlow SavedModels served by TensorFlow Serving.

Importing this package never starts the TensorFlow runtime; only the
modules under `smsurgery.graph` do, and only when called.
"""

from smsurgery.describe import describe
from smsurgery.errors import InternalError, SmsurgeryError
from smsurgery.layout import ModelRef, resolve
from smsurgery.model import MetaGraph, SavedModelFile, SignatureView, TensorView, read

__all__ = [
    "InternalError",
    "MetaGraph",
    "ModelRef",
    "SavedModelFile",
    "SignatureView",
    "SmsurgeryError",
    "TensorView",
    "describe",
    "read",
    "resolve",
]
__version__ = "0.1.0"
