"""`smsurgery --version`: this tool's version and the TensorFlow and protobuf it would use.

Read from the installed packages' metadata, never by importing them: a
version check must not cost TensorFlow's three-second start-up, and must
work even where TensorFlow's import fails.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf-nightly", "protobuf", "tensorflow-serving-api")


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_line() -> str:
    """`smsurgery 0.1.0 (tensorflow 2.21.0, protobuf 7.36.2, ...)`; missing packages say so."""
    from smsurgery import __version__

    found = [f"{name} {version}" for name in DISTRIBUTIONS if (version := installed_version(name))]
    if not any(name.startswith(("tensorflow ", "tensorflow-cpu ", "tf-nightly ")) for name in found):
        found.insert(0, "tensorflow not installed")
    return f"smsurgery {__version__} ({', '.join(found)})"
