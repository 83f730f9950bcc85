"""Warmup files: `assets.extra/tf_serving_warmup_requests` in a new version.

A TFRecord file of PredictionLog records, framed in pure Python (length,
masked crc32c of the length, data, masked crc32c of the data) and written
into a new version through the atomic publisher. Bad framing is what gives
users "corrupted record at 0" (tensorflow/serving issues 1562, 1602).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsurgery.core.errors import InvalidRequest
from smsurgery.publishing.target import PublishTarget
from smsurgery.serving.grpc_requests import grpc_request, prediction_log
from smsurgery.serving.request_body import BuiltRequest

WARMUP_SCHEMA = "smsurgery.warmup/1"

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum TFRecord uses; table-driven pure Python."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: list[bytes]) -> bytes:
    """TFRecord framing of each record; identical records are framed once."""
    framed: dict[bytes, bytes] = {}
    parts = []
    for record in records:
        if record not in framed:
            length = struct.pack("<Q", len(record))
            framed[record] = (
                length + struct.pack("<I", masked_crc32c(length)) + record + struct.pack("<I", masked_crc32c(record))
            )
        parts.append(framed[record])
    return b"".join(parts)


def read_tfrecord(data: bytes) -> list[bytes]:
    """Records of a TFRecord file, checking both checksums (what Serving's reader does)."""
    records, offset = [], 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise InvalidRequest(f"truncated TFRecord header at offset {offset}")
        length_bytes = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        if length_crc != masked_crc32c(length_bytes):
            raise InvalidRequest(f"corrupted record at {offset}: length checksum mismatch")
        end = offset + 12 + length
        if end + 4 > len(data):
            raise InvalidRequest(f"truncated TFRecord record at offset {offset}")
        record = data[offset + 12 : end]
        if struct.unpack("<I", data[end : end + 4])[0] != masked_crc32c(record):
            raise InvalidRequest(f"corrupted record at {offset}: data checksum mismatch")
        records.append(record)
        offset = end + 4
    return records


def warmup_bytes(built: BuiltRequest, count: int = 1) -> bytes:
    """`count` PredictionLog records of the request, framed as TFRecord."""
    if not 1 <= count <= MAX_WARMUP_RECORDS:
        raise InvalidRequest(
            f"--count must be between 1 and {MAX_WARMUP_RECORDS} (got {count})",
            hint=f"TensorFlow Serving refuses to load a version with more than {MAX_WARMUP_RECORDS} warmup records",
        )
    record = prediction_log(grpc_request(built), built.method).SerializeToString(deterministic=True)
    return tfrecord([record] * count)


@dataclass(frozen=True)
class WarmupReport:
    base: Path | str  # URL strings for a remote base
    version: int
    path: Path | str
    file: Path | str
    records: int
    bytes: int
    signature: str
    method: str
    replaced: bool  # the source version already had a warmup file

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": WARMUP_SCHEMA,
            "base": str(self.base),
            "version": self.version,
            "path": str(self.path),
            "file": str(self.file),
            "records": self.records,
            "bytes": self.bytes,
            "signature": self.signature,
            "method": self.method,
            "replaced": self.replaced,
        }


def publish_warmup(built: BuiltRequest, count: int = 1, target: PublishTarget | None = None) -> WarmupReport:
    """Write a new version: the source's files, plus the warmup file (replacing an old one)."""
    from smsurgery.publishing.new_version import publish_proto

    data = warmup_bytes(built, count)
    replaced = (built.model.path / WARMUP_FILE).is_file()
    published = publish_proto(
        built.model, built.model.proto, target or PublishTarget(), extra_files={WARMUP_FILE: data}
    )
    return WarmupReport(
        base=published.base,
        version=published.version,
        path=published.path,
        file=published.path / WARMUP_FILE if isinstance(published.path, Path) else f"{published.path}/{WARMUP_FILE}",
        records=count,
        bytes=len(data),
        signature=built.signature.key,
        method=built.method,
        replaced=replaced,
    )
