"""One exception family for everything a user can get wrong.

Every `SmsurgeryError` renders as one line: what was wrong, then what exists
instead or what to do. The CLI catches the family once, prints that line on
stderr and exits with status 2; a Python caller catches the same classes.

`InternalError` is deliberately *not* part of the family: it means a bug in
smsurgery, and the CLI lets it through with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class SmsurgeryError(Exception):
    """A problem with the user's input, files or environment (exit status 2)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class PathNotFound(SmsurgeryError):
    """A path the user named does not exist."""


class NotASavedModel(SmsurgeryError):
    """A folder or file that holds something other than a SavedModel."""


class VersionNotFound(SmsurgeryError):
    """A model base without that version, or without any version."""


class TagSetNotFound(SmsurgeryError):
    """No meta graph with the requested tag set."""


class SignatureNotFound(SmsurgeryError):
    """No signature with that key."""


class AliasNotFound(SmsurgeryError):
    """No input or output with that alias in a signature."""


class TensorNotFound(SmsurgeryError):
    """No tensor with that name in the graph."""


class NameCollision(SmsurgeryError):
    """A rename or an addition onto a name that already exists."""


class InvalidName(SmsurgeryError):
    """A name TensorFlow or TensorFlow Serving would not accept."""


class CorruptModel(SmsurgeryError):
    """A file of the model that cannot be parsed or is inconsistent."""


class DtypeMismatch(SmsurgeryError):
    """Two tensors that must agree in dtype do not."""


class InvalidEdit(SmsurgeryError):
    """An edit that is well-formed but not allowed (e.g. removing the last signature)."""


class InvalidOption(SmsurgeryError):
    """An option value that would make the result silently wrong (a NaN tolerance, an empty name)."""


class UnsupportedModel(SmsurgeryError):
    """A model this operation cannot handle, with the reason and the way out."""


class PublishError(SmsurgeryError):
    """A new version could not be written (permissions, disk, an existing version)."""


class InvalidRequest(SmsurgeryError):
    """A request value or body that TensorFlow Serving would reject."""


class LoaderFailed(SmsurgeryError):
    """A TensorFlow loader could not load or run the model."""


class VerificationFailed(SmsurgeryError):
    """The new version does not compute what the old one did."""


class MissingDependency(SmsurgeryError):
    """An optional package that this operation needs is not installed."""


class StorageError(SmsurgeryError):
    """An object store refused or failed a request (no bucket, no credentials, access denied, network)."""


class InternalError(Exception):
    """A bug in smsurgery: never raised for bad input. Not a SmsurgeryError."""


def listing(names: Iterable[str], *, empty: str = "none") -> str:
    """`a, b, c` for messages that say what exists instead; `none` if empty."""
    items = [str(name) for name in names]
    return ", ".join(items) if items else empty
