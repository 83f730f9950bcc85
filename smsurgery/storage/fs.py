"""The fsspec file system for a remote URL, and one-line errors for what object stores refuse.

Endpoints and credentials come from where s3fs and gcsfs look by themselves
(`AWS_ENDPOINT_URL`, `AWS_*`, profiles; `STORAGE_EMULATOR_HOST`, application
default credentials): smsurgery adds none of its own and never prints one.

Two things are set here for every user, not only for tests:
- listings are never cached: a publisher lists the base again after its
  claim, and a cached listing would hide another writer's version;
- against a GCS emulator (`STORAGE_EMULATOR_HOST`), gcsfs's experimental
  file system probes the bucket type over TLS and stalls about a minute per
  operation on a plain-HTTP emulator; the core `GCSFileSystem` is used
  there instead (what `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false` would pick).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from smsurgery.core.errors import MissingDependency, SmsurgeryError, StorageError
from smsurgery.storage.url import SCHEMES, RemoteURL

_FILESYSTEMS: dict[str, Any] = {}
_OWNER = [os.getpid()]  # the process the cached file systems belong to
# Bounded waits: a stopped server must end a command with one line, not minutes of retries.
_S3_CONFIG = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


def filesystem(url: RemoteURL) -> Any:
    """One fsspec file system per scheme and process (s3fs for s3://, gcsfs for gs://).

    A forked child (`apply --jobs`) makes its own: the parent's holds an
    event loop and connections that belong to the parent's threads.
    """
    if _OWNER[0] != os.getpid():
        forget_filesystems()
        _OWNER[0] = os.getpid()
    if url.scheme not in _FILESYSTEMS:
        _FILESYSTEMS[url.scheme] = _s3() if url.scheme == "s3" else _gcs()
    return _FILESYSTEMS[url.scheme]


def _missing(scheme: str, module: str) -> MissingDependency:
    extra = SCHEMES[scheme]
    return MissingDependency(
        f"{scheme}:// URLs need the {module} package, which is not installed",
        hint=f"pip install 'smsurgery[{extra}]'",
    )


def _s3() -> Any:
    try:
        import s3fs
    except ImportError as error:
        raise _missing("s3", "s3fs") from error
    fs = s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True, config_kwargs=_S3_CONFIG)
    fs.retries = 2  # s3fs's own retries, on top of botocore's: 5 with back-off made a dead server a 20 s wait
    return fs


def _gcs() -> Any:
    try:
        import gcsfs
        from gcsfs.core import GCSFileSystem
    except ImportError as error:
        raise _missing("gs", "gcsfs") from error
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # An emulator needs no token; the core class skips the TLS bucket-type probe (see the module docstring).
        return GCSFileSystem(token="anon", use_listings_cache=False, skip_instance_cache=True)
    return gcsfs.GCSFileSystem(use_listings_cache=False, skip_instance_cache=True)


def forget_filesystems() -> None:
    """Drop the cached file systems (a test that restarts a server, a fork)."""
    _FILESYSTEMS.clear()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# S3 error codes for credentials the store does not accept (as opposed to a permission they lack).
_REFUSED_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def _error_code(error: BaseException) -> str | None:
    """The store's error code (`AccessDenied`, `InvalidAccessKeyId`) of a botocore error s3fs wrapped, if any."""
    seen: BaseException | None = error
    for _depth in range(4):
        if seen is None:
            return None
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            return str(response["Error"].get("Code") or "") or None
        seen = seen.__cause__ or seen.__context__
    return None


def _why(error: BaseException, url: RemoteURL) -> tuple[str, str | None]:
    """What went wrong, and what to do, from an s3fs/gcsfs/botocore/aiohttp error."""
    name = type(error).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        where = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile" if url.scheme == "s3" else "gcloud auth"
        return f"no credentials for {url.scheme}://", f"set them up as {where} (smsurgery reads none itself)"
    code = _error_code(error)
    if code in _REFUSED_CREDENTIALS:
        return (
            f"access denied to {url}: the store refused the credentials ({code})",
            "the key or its secret is wrong or expired (smsurgery reads none itself: see docs/buckets.md)",
        )
    if isinstance(error, PermissionError) or "AccessDenied" in str(error) or "Forbidden" in name:
        return f"access denied to {url}", "check the credentials' permissions on that bucket"
    if isinstance(error, FileNotFoundError):
        return f"{url} does not exist (no such bucket or prefix)", None
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError") or "Connect" in name:
        return f"cannot reach the object store for {url}: {_first_line(error)}", None
    return f"{url}: {_first_line(error)}", None


@contextlib.contextmanager
def storage_errors(url: RemoteURL, doing: str) -> Iterator[None]:
    """Turn what the store or the network raised into one `StorageError` line: `doing` + why."""
    try:
        yield
    except SmsurgeryError:
        raise
    except (OSError, ValueError, RuntimeError, TimeoutError, ImportError) as error:
        raise _as_storage_error(error, url, doing) from error
    except Exception as error:  # botocore/aiohttp/google errors share no base class with the above
        if type(error).__module__.split(".")[0] in ("botocore", "aiohttp", "aiobotocore", "google", "gcsfs", "s3fs"):
            raise _as_storage_error(error, url, doing) from error
        raise


def _as_storage_error(error: BaseException, url: RemoteURL, doing: str) -> StorageError:
    message, hint = _why(error, url)
    return StorageError(f"cannot {doing}: {message}", hint=hint)
