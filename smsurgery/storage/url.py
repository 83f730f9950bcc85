"""What a remote model location looks like: `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`, and `@N`.

Object stores have no folders: a "folder" is a key prefix. A `RemoteURL`
keeps the scheme and the `bucket/key` path without a trailing slash, so
joining and comparing prefixes is plain string work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smsurgery.core.errors import InvalidOption
from smsurgery.core.layout import is_remote_text

# The scheme the user types -> the extra that brings its fsspec file system.
SCHEMES = {"s3": "s3", "gs": "gcs"}
_AT_VERSION = re.compile(r"^(?P<url>.+)@(?P<version>\d+)$")

# True for `s3://...` and `gs://...`: the one rule, kept in core.layout so that core tells a URL from a
# local path without importing this package.
is_remote = is_remote_text


@dataclass(frozen=True)
class RemoteURL:
    """`scheme://bucket/key...`; `path` is `bucket/key...` as fsspec names objects."""

    scheme: str
    path: str

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> RemoteURL:
        head = self.path.rsplit("/", 1)[0] if "/" in self.path else self.path
        return RemoteURL(self.scheme, head)

    def child(self, relative: str) -> RemoteURL:
        return RemoteURL(self.scheme, f"{self.path}/{relative.strip('/')}")

    def relative(self, full_path: str) -> str:
        """`bucket/a/b/c` relative to this prefix `bucket/a`: `b/c`."""
        return full_path[len(self.path) + 1 :]

    def __str__(self) -> str:
        return f"{self.scheme}://{self.path}"


def parse(text: str) -> tuple[RemoteURL, int | None]:
    """`s3://b/models/resnet@3` -> (RemoteURL, 3); a bucket alone is refused (a base is a prefix in it)."""
    match = _AT_VERSION.match(text)
    version = int(match["version"]) if match else None
    raw = match["url"] if match else text
    scheme, _, rest = raw.partition("://")
    if scheme not in SCHEMES:
        raise InvalidOption(f"{text} is not an s3:// or gs:// URL")
    path = re.sub(r"/+", "/", rest).strip("/")
    if not path:
        raise InvalidOption(f"{text} names no bucket", hint=f"{scheme}://BUCKET/PREFIX")
    return RemoteURL(scheme, path), version
