"""Type-correct sample values for a signature's inputs, from dtype and shape.

Verification, request bodies and warmup records all need inputs that a
signature accepts without the user supplying any. Unknown dimensions become
`batch` (the first) or 2 (the others); an unknown rank becomes `[batch]`.
Values are deterministic for a seed, so two versions see the same inputs.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Collection
from typing import Any

import numpy as np

from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import SignatureView, TensorView

MAX_SAMPLE_BYTES = 1 << 30  # one generated array; verification of an image model needs far less
MAX_JSON_SAMPLE_ELEMENTS = 1 << 24  # values of one sample in a JSON body (~120 MB of text)
_OBJECT_BYTES = 64  # a short Python bytes object and its pointer

NUMPY_DTYPES: dict[str, Any] = {
    "DT_FLOAT": np.float32,
    "DT_DOUBLE": np.float64,
    "DT_HALF": np.float16,
    "DT_INT8": np.int8,
    "DT_INT16": np.int16,
    "DT_INT32": np.int32,
    "DT_INT64": np.int64,
    "DT_UINT8": np.uint8,
    "DT_UINT16": np.uint16,
    "DT_UINT32": np.uint32,
    "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_,
    "DT_STRING": np.object_,
    "DT_COMPLEX64": np.complex64,
    "DT_COMPLEX128": np.complex128,
}


def base_dtype(dtype: str) -> str:
    """`DT_FLOAT_REF` -> `DT_FLOAT`: ref dtypes feed and fetch as their base type."""
    return dtype[: -len("_REF")] if dtype.endswith("_REF") else dtype


def numpy_dtype(dtype: str) -> Any:
    try:
        return NUMPY_DTYPES[base_dtype(dtype)]
    except KeyError as error:
        raise InvalidRequest(f"dtype {dtype} has no sample values", hint="pass values explicitly") from error


def concrete_shape(shape: tuple[int, ...] | None, batch: int) -> tuple[int, ...]:
    if shape is None:
        return (batch,)
    return tuple((batch if i == 0 else 2) if d < 0 else d for i, d in enumerate(shape))


def _sample_size(tensor: TensorView, shape: tuple[int, ...], dtype: Any, max_elements: int | None) -> None:
    """Refuse, before allocating, a sample that a declared shape like [1000000, 1000000] would make huge."""
    count = math.prod(shape)  # Python ints: a product of int64 dims must not wrap around
    size = count * (_OBJECT_BYTES if dtype is np.object_ else np.dtype(dtype).itemsize)
    too_many = max_elements is not None and count > max_elements
    if size > MAX_SAMPLE_BYTES or too_many:
        limit = f"{max_elements} values" if too_many else f"{MAX_SAMPLE_BYTES >> 30} GiB"
        raise InvalidRequest(
            f"input '{tensor.alias}': a sample of shape {list(shape)} would hold {count} values "
            f"({size / (1 << 30):.3g} GiB), more than the {limit} smsurgery generates",
            hint="give the value yourself (--input ALIAS=@FILE), or a smaller --batch",
        )


def sample_array(
    tensor: TensorView, *, batch: int = 1, seed: int = 0, image: bool = False, max_elements: int | None = None
) -> np.ndarray:
    """A deterministic array that fits the tensor's dtype and shape (at most `max_elements` values).

    `image`: PNG files for a string input.
    """
    shape = concrete_shape(tensor.shape, batch)
    rng = np.random.default_rng(seed + sum(tensor.alias.encode()))
    dtype = numpy_dtype(tensor.dtype)
    _sample_size(tensor, shape, dtype, max_elements)
    if dtype is np.object_ and image:
        count = math.prod(shape)
        return np.array([tiny_png(seed=seed + i) for i in range(count)], dtype=object).reshape(shape)
    if dtype is np.object_:
        flat = [f"{tensor.alias}-{i}".encode() for i in range(int(np.prod(shape, dtype=np.int64)))]
        return np.array(flat, dtype=object).reshape(shape)
    if dtype is np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 5, size=shape).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def sample_inputs(
    signature: SignatureView, *, batch: int = 1, seed: int = 0, images: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """Sample arrays for every plain (non-composite) input of a signature, by alias; `images`: image inputs."""
    return {
        t.alias: sample_array(t, batch=batch, seed=seed, image=t.alias in images)
        for t in signature.inputs
        if t.name is not None
    }


def tiny_png(width: int = 8, height: int = 8, *, seed: int = 0) -> bytes:
    """A valid RGB PNG built with zlib: image-decoding inputs accept it."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
