"""`fingerprint.pb`: does it belong to this `saved_model.pb`?

TensorFlow (>= 2.12) writes a FingerprintDef whose `checkpoint_hash` is
FarmHash's Fingerprint64 of `variables/variables.index`, and (fingerprint
producer 1) whose `saved_model_checksum` is Fingerprint64 of the
`saved_model.pb` bytes; later producers hash a re-serialisation done in C++
that we do not rebuild (TF 2.21 writes producer 4). An edit that keeps the
old fingerprint leaves it stale; loaders do not care, but model registries
and caches keyed on it do. Fingerprint64 (farmhashna::Hash64) is
implemented here in pure Python; files past `MAX_HASHED_BYTES` are not
hashed (it would take longer than the rest of `check`).
"""

from __future__ import annotations

import struct
from pathlib import Path

from google.protobuf import message as pb_message

from smsurgery.core import lazy_files, protos

MAX_HASHED_BYTES = 64 * 2**20
_M = 0xFFFFFFFFFFFFFFFF
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F


def _fetch64(data: bytes, at: int) -> int:
    return struct.unpack_from("<Q", data, at)[0]


def _fetch32(data: bytes, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _rotate(value: int, shift: int) -> int:
    return ((value >> shift) | (value << (64 - shift))) & _M if shift else value


def _shift_mix(value: int) -> int:
    return value ^ (value >> 47)


def _hash16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _hash0to16(data: bytes, n: int) -> int:
    if n >= 8:
        mul = K2 + n * 2
        a = (_fetch64(data, 0) + K2) & _M
        b = _fetch64(data, n - 8)
        c = (_rotate(b, 37) * mul + a) & _M
        d = ((_rotate(a, 25) + b) * mul) & _M
        return _hash16(c, d, mul)
    if n >= 4:
        mul = K2 + n * 2
        return _hash16(n + (_fetch32(data, 0) << 3), _fetch32(data, n - 4), mul)
    if n > 0:
        y = data[0] + (data[n >> 1] << 8)
        z = n + (data[n - 1] << 2)
        return (_shift_mix(((y * K2) ^ (z * K0)) & _M) * K2) & _M
    return K2


def _hash17to32(data: bytes, n: int) -> int:
    mul = K2 + n * 2
    a = (_fetch64(data, 0) * K1) & _M
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & _M
    d = (_fetch64(data, n - 16) * K2) & _M
    return _hash16(
        (_rotate((a + b) & _M, 43) + _rotate(c, 30) + d) & _M, (a + _rotate((b + K2) & _M, 18) + c) & _M, mul
    )


def _hash33to64(data: bytes, n: int) -> int:
    mul = K2 + n * 2
    a = (_fetch64(data, 0) * K2) & _M
    b = _fetch64(data, 8)
    c = (_fetch64(data, n - 8) * mul) & _M
    d = (_fetch64(data, n - 16) * K2) & _M
    y = (_rotate((a + b) & _M, 43) + _rotate(c, 30) + d) & _M
    z = _hash16(y, (a + _rotate((b + K2) & _M, 18) + c) & _M, mul)
    e = (_fetch64(data, 16) * mul) & _M
    f = _fetch64(data, 24)
    g = ((y + _fetch64(data, n - 32)) * mul) & _M
    h = ((z + _fetch64(data, n - 24)) * mul) & _M
    return _hash16((_rotate((e + f) & _M, 43) + _rotate(g, 30) + h) & _M, (e + _rotate((f + a) & _M, 18) + g) & _M, mul)


def _weak32(data: bytes, at: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = struct.unpack_from("<4Q", data, at)
    a = (a + w) & _M
    b = _rotate((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rotate(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(data: bytes) -> int:
    """FarmHash Fingerprint64 (farmhashna::Hash64), as TensorFlow's `Fingerprint64`."""
    n = len(data)
    if n <= 16:
        return _hash0to16(data, n)
    if n <= 32:
        return _hash17to32(data, n)
    if n <= 64:
        return _hash33to64(data, n)
    seed = 81
    x = seed
    y = (seed * K1 + 113) & _M
    z = (_shift_mix((y * K2 + 113) & _M) * K2) & _M
    v = (0, 0)
    w = (0, 0)
    x = (x * K2 + _fetch64(data, 0)) & _M
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    at = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(data, at + 8)) & _M, 37) * K1) & _M
        y = (_rotate((y + v[1] + _fetch64(data, at + 48)) & _M, 42) * K1) & _M
        x ^= w[1]
        y = (y + v[0] + _fetch64(data, at + 40)) & _M
        z = (_rotate((z + w[0]) & _M, 33) * K1) & _M
        v = _weak32(data, at, (v[1] * K1) & _M, (x + w[0]) & _M)
        w = _weak32(data, at + 32, (z + w[1]) & _M, (y + _fetch64(data, at + 16)) & _M)
        z, x = x, z
        at += 64
        if at == end:
            break
    mul = K1 + ((z & 0xFF) << 1)
    at = last64
    w = ((w[0] + ((n - 1) & 63)) & _M, w[1])
    v = ((v[0] + w[0]) & _M, v[1])
    w = ((w[0] + v[0]) & _M, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(data, at + 8)) & _M, 37) * mul) & _M
    y = (_rotate((y + v[1] + _fetch64(data, at + 48)) & _M, 42) * mul) & _M
    x ^= (w[1] * 9) & _M
    y = (y + v[0] * 9 + _fetch64(data, at + 40)) & _M
    z = (_rotate((z + w[0]) & _M, 33) * mul) & _M
    v = _weak32(data, at, (v[1] * mul) & _M, (x + w[0]) & _M)
    w = _weak32(data, at + 32, (z + w[1]) & _M, (y + _fetch64(data, at + 16)) & _M)
    z, x = x, z
    return _hash16((_hash16(v[0], w[0], mul) + _shift_mix(y) * K0 + z) & _M, (_hash16(v[1], w[1], mul) + x) & _M, mul)


def fingerprint_problem(fingerprint: Path, saved_model: Path) -> str | None:
    """Why `fingerprint.pb` does not fit `saved_model.pb`, or None when it does (or we cannot tell)."""
    data = fingerprint.read_bytes()
    if not data:
        return "fingerprint.pb is empty: TensorFlow then takes a TF2 export for a TF1 one"
    message = protos.message_class("tensorflow/core/protobuf/fingerprint.proto", "tensorflow.FingerprintDef")()
    try:
        message.ParseFromString(data)
    except pb_message.DecodeError:
        return "fingerprint.pb is not a FingerprintDef"
    index = saved_model.parent / "variables" / "variables.index"
    if index.is_file() and index.stat().st_size <= MAX_HASHED_BYTES:
        actual = fingerprint64(index.read_bytes())
        if message.checkpoint_hash not in (0, actual):
            return (
                f"its checkpoint_hash {message.checkpoint_hash} is not variables.index's ({actual}): "
                "written for other variables"
            )
    # Fingerprint producer 1 hashed the file's bytes; later producers hash a form we cannot rebuild.
    if message.version.producer != 1 or saved_model.suffix != ".pb":
        return None
    if saved_model.stat().st_size > MAX_HASHED_BYTES:
        return None
    lazy_files.ensure_whole(saved_model)  # the checksum needs every byte of a remote file read by ranges
    actual = fingerprint64(saved_model.read_bytes())
    if message.saved_model_checksum != actual:
        return (
            f"its saved_model_checksum {message.saved_model_checksum} is not saved_model.pb's ({actual}): "
            "written for another saved_model.pb"
        )
    return None
