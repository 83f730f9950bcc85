"""`numpy.random.default_rng(seed)` in pure Python, for the three draws samples use.

A request body needs a few dozen sample values, and importing numpy to make
them costs 0.15 s of CPU, more than reading the model. This port of numpy's
SeedSequence, PCG64 (XSL-RR 128/64) and its bounded-integer and uniform
draws gives the very same values, so that a body is the same whether or not
numpy made it. `tests/test_pcg64.py` holds it equal to numpy. It is slow per
value (a microsecond or so), so large samples still come from numpy.
"""

from __future__ import annotations

from itertools import cycle

_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1

# SeedSequence's hash constants (numpy/random/bit_generator.pyx)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = 16
_POOL_SIZE = 4

_PCG_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341  # PCG_DEFAULT_MULTIPLIER_128


def _words(entropy: int) -> list[int]:
    """A non-negative int as little-endian 32-bit words (`_coerce_to_uint32_array`)."""
    if entropy < 0:
        raise ValueError("expected a non-negative integer")
    words = []
    while True:
        words.append(entropy & _MASK32)
        entropy >>= 32
        if not entropy:
            return words


def _seed_pool(entropy: int) -> list[int]:
    """SeedSequence.mix_entropy: the pool of four words that every state is drawn from."""
    words = _words(entropy)
    hash_const = _INIT_A

    def hashmix(value: int) -> int:
        nonlocal hash_const
        value ^= hash_const
        hash_const = (hash_const * _MULT_A) & _MASK32
        value = (value * hash_const) & _MASK32
        return value ^ (value >> _XSHIFT)

    def mix(x: int, y: int) -> int:
        result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _MASK32
        return result ^ (result >> _XSHIFT)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(_POOL_SIZE)]
    for src in range(_POOL_SIZE):
        for dst in range(_POOL_SIZE):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(_POOL_SIZE, len(words)):
        for dst in range(_POOL_SIZE):
            pool[dst] = mix(pool[dst], hashmix(words[src]))
    return pool


def _generate_state(pool: list[int], count: int) -> list[int]:
    """SeedSequence.generate_state(count, uint64)."""
    hash_const = _INIT_B
    words = []
    source = cycle(pool)
    for _ in range(2 * count):
        value = next(source) ^ hash_const
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = (value * hash_const) & _MASK32
        words.append(value ^ (value >> _XSHIFT))
    return [words[i] | (words[i + 1] << 32) for i in range(0, 2 * count, 2)]


class Generator:
    """The draws of `numpy.random.default_rng(seed)` that samples use, value for value."""

    def __init__(self, seed: int) -> None:
        s0, s1, i0, i1 = _generate_state(_seed_pool(seed), 4)
        self._inc = (((i0 << 64) | i1) << 1 | 1) & _MASK128
        self._state = 0
        self._step()
        self._state = (self._state + ((s0 << 64) | s1)) & _MASK128
        self._step()
        self._half: int | None = None  # the upper half of a 64-bit draw, kept for the next 32-bit one

    def _step(self) -> None:
        self._state = (self._state * _PCG_MULTIPLIER + self._inc) & _MASK128

    def next64(self) -> int:
        self._step()
        state = self._state
        value = ((state >> 64) ^ state) & _MASK64
        rotation = state >> 122
        return ((value >> rotation) | (value << (-rotation & 63))) & _MASK64

    def next32(self) -> int:
        if self._half is not None:
            value, self._half = self._half, None
            return value
        value = self.next64()
        self._half = value >> 32
        return value & _MASK32

    def uniform(self, count: int) -> list[float]:
        """`uniform(0.0, 1.0, size=count)`: 53 random bits per double."""
        return [(self.next64() >> 11) * (1.0 / 9007199254740992.0) for _ in range(count)]

    def integers(self, high: int, count: int) -> list[int]:
        """`integers(0, high, size=count)` (int64) for 1 < high <= 2**32: Lemire's method on 32-bit draws."""
        bound = high - 1
        if not 0 < bound < _MASK32:
            raise ValueError("high must be in (1, 2**32)")
        threshold = (_MASK32 - bound) % high
        out = []
        for _ in range(count):
            product = self.next32() * high
            while (product & _MASK32) < threshold:
                product = self.next32() * high
            out.append(product >> 32)
        return out

    def bytes_uint8(self, count: int) -> bytes:
        """`integers(0, 256, size=count, dtype=uint8)`: four bytes from each 32-bit draw, low byte first."""
        out = bytearray()
        for _ in range((count + 3) // 4):
            out += self.next32().to_bytes(4, "little")
        return bytes(out[:count])
