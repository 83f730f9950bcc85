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
from typing import TYPE_CHECKING, Any

from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import SignatureView, TensorView
from smsurgery.serving.pcg64 import Generator

if TYPE_CHECKING:  # numpy loads only for arrays: a request body's few values need none of it
    import numpy as np

MAX_SAMPLE_BYTES = 1 << 30  # one generated array; verification of an image model needs far less
MAX_JSON_SAMPLE_ELEMENTS = 1 << 24  # values of one sample in a JSON body (~120 MB of text)

# each dtype's numpy type and its size in bytes (a string: a short Python bytes object and its pointer)
_TYPES: dict[str, tuple[str, int]] = {
    "DT_FLOAT": ("float32", 4),
    "DT_DOUBLE": ("float64", 8),
    "DT_HALF": ("float16", 2),
    "DT_INT8": ("int8", 1),
    "DT_INT16": ("int16", 2),
    "DT_INT32": ("int32", 4),
    "DT_INT64": ("int64", 8),
    "DT_UINT8": ("uint8", 1),
    "DT_UINT16": ("uint16", 2),
    "DT_UINT32": ("uint32", 4),
    "DT_UINT64": ("uint64", 8),
    "DT_BOOL": ("bool_", 1),
    "DT_STRING": ("object_", 64),
    "DT_COMPLEX64": ("complex64", 8),
    "DT_COMPLEX128": ("complex128", 16),
}
# values drawn in pure Python (about a microsecond each, so 80 ms at most, less than importing numpy);
# larger samples come from numpy
PURE_SAMPLE_LIMIT = 1 << 16
_FLOAT_CASTS = {"DT_FLOAT": "f", "DT_HALF": "e"}  # struct formats that round a double as numpy's astype does


def base_dtype(dtype: str) -> str:
    """`DT_FLOAT_REF` -> `DT_FLOAT`: ref dtypes feed and fetch as their base type."""
    return dtype[: -len("_REF")] if dtype.endswith("_REF") else dtype


def numpy_dtype(dtype: str) -> Any:
    import numpy as np

    return getattr(np, _type_of(dtype)[0])


def _type_of(dtype: str) -> tuple[str, int]:
    try:
        return _TYPES[base_dtype(dtype)]
    except KeyError as error:
        raise InvalidRequest(f"dtype {dtype} has no sample values", hint="pass values explicitly") from error


def concrete_shape(shape: tuple[int, ...] | None, batch: int) -> tuple[int, ...]:
    if shape is None:
        return (batch,)
    return tuple((batch if i == 0 else 2) if d < 0 else d for i, d in enumerate(shape))


def _sample_shape(tensor: TensorView, batch: int, max_elements: int | None) -> tuple[int, ...]:
    """The sample's shape; refused, before anything is allocated, when a shape like [1000000, 1000000] is huge."""
    shape = concrete_shape(tensor.shape, batch)
    count = math.prod(shape)  # Python ints: a product of int64 dims must not wrap around
    size = count * _type_of(tensor.dtype)[1]
    too_many = max_elements is not None and count > max_elements
    if size > MAX_SAMPLE_BYTES or too_many:
        limit = f"{max_elements} values" if too_many else f"{MAX_SAMPLE_BYTES >> 30} GiB"
        raise InvalidRequest(
            f"input '{tensor.alias}': a sample of shape {list(shape)} would hold {count} values "
            f"({size / (1 << 30):.3g} GiB), more than the {limit} smsurgery generates",
            hint="give the value yourself (--input ALIAS=@FILE), or a smaller --batch",
        )
    return shape


def _string_values(tensor: TensorView, count: int, image: bool, seed: int) -> list[bytes]:
    if image:
        return [tiny_png(seed=seed + i) for i in range(count)]
    return [f"{tensor.alias}-{i}".encode() for i in range(count)]


def _rng_seed(tensor: TensorView, seed: int) -> int:
    return seed + sum(tensor.alias.encode())


def sample_array(
    tensor: TensorView, *, batch: int = 1, seed: int = 0, image: bool = False, max_elements: int | None = None
) -> np.ndarray:
    """A deterministic array that fits the tensor's dtype and shape (at most `max_elements` values).

    `image`: PNG files for a string input.
    """
    import numpy as np

    shape = _sample_shape(tensor, batch, max_elements)
    dtype = numpy_dtype(tensor.dtype)
    if dtype is np.object_:
        return np.array(_string_values(tensor, math.prod(shape), image, seed), dtype=object).reshape(shape)
    rng = np.random.default_rng(_rng_seed(tensor, seed))
    if dtype is np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 5, size=shape).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def sample_json_values(
    tensor: TensorView, *, batch: int = 1, seed: int = 0, max_elements: int | None = None
) -> tuple[tuple[int, ...], list[Any]]:
    """The values of `sample_array` as a shape and a flat list of Python values, floats rounded to 4 places.

    What a JSON body carries. Small samples are drawn without numpy, by the
    port of its generator, so a request need not import it; the values are
    the same either way.
    """
    shape = _sample_shape(tensor, batch, max_elements)
    count = math.prod(shape)
    dtype = base_dtype(tensor.dtype)
    if dtype == "DT_STRING":
        return shape, _string_values(tensor, count, False, seed)
    if count > PURE_SAMPLE_LIMIT or dtype.startswith("DT_COMPLEX"):
        return shape, _numpy_json_values(sample_array(tensor, batch=batch, seed=seed, max_elements=max_elements))
    rng = Generator(_rng_seed(tensor, seed))
    if dtype == "DT_BOOL":
        return shape, [bool(v) for v in rng.integers(2, count)]
    if dtype not in ("DT_FLOAT", "DT_DOUBLE", "DT_HALF"):
        return shape, rng.integers(5, count)
    values = rng.uniform(count)
    if dtype in _FLOAT_CASTS:
        packing = struct.Struct(_FLOAT_CASTS[dtype])
        values = [packing.unpack(packing.pack(v))[0] for v in values]
    return shape, [round_like_numpy(v, 4) for v in values]


def _numpy_json_values(array: np.ndarray) -> list[Any]:
    import numpy as np

    if array.dtype.kind == "f":
        return np.round(array.astype(np.float64), 4).ravel().tolist()
    return array.ravel().tolist()


def round_like_numpy(value: float, decimals: int) -> float:
    """`numpy.round(value, decimals)`: scale, round half to even, scale back (not Python's exact `round`)."""
    scale = 10.0**decimals
    return round(value * scale) / scale


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
    pixels = Generator(seed).bytes_uint8(height * width * 3)  # numpy's integers(0, 256, uint8), byte for byte
    row = width * 3
    raw = b"".join(b"\x00" + pixels[y * row : (y + 1) * row] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
