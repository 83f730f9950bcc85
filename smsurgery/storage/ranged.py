"""Random access to one remote object through block-cached range requests.

The skim walks `saved_model.pb` field by field and skips the graph: read
through this view, it touches only the blocks holding the top-level field
headers and the small MetaGraphDef fields, so `show` on a bucket's model
with a 1 GB graph fetches a few blocks, not the file. Adjacent missing
blocks are fetched in one request; a block is fetched at most once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from smsurgery.storage.fs import filesystem, storage_errors
from smsurgery.storage.url import RemoteURL

BLOCK = 64 << 10  # a request costs a round trip; 64 kB is a fraction of one on any link


def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    """Consecutive block numbers as half-open ranges: [1, 2, 3, 7] -> [(1, 4), (7, 8)]."""
    runs: list[tuple[int, int]] = []
    for number in blocks:
        if runs and runs[-1][1] == number:
            runs[-1] = (runs[-1][0], number + 1)
        else:
            runs.append((number, number + 1))
    return runs


class RangedObject:
    """`len(view)`, `view[i]` and `view[a:b]` over a remote object, as the skim reads an mmap."""

    def __init__(self, url: RemoteURL, size: int, on_fetch: Callable[[int], None], block: int = BLOCK) -> None:
        self.url, self.size, self.block = url, size, block
        self.on_fetch = on_fetch  # counts the bytes moved (the command's transfer report)
        self._blocks: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.size)
            if step != 1:
                raise ValueError("a ranged object is read in forward slices")
            return self._read(start, stop) if stop > start else b""
        position = key + self.size if key < 0 else key
        if not 0 <= position < self.size:
            raise IndexError(key)
        number = position // self.block
        if number not in self._blocks:
            self._load([number])
        return self._blocks[number][position - number * self.block]

    def _read(self, start: int, stop: int) -> bytes:
        first, last = start // self.block, (stop - 1) // self.block
        self._load([n for n in range(first, last + 1) if n not in self._blocks])
        data = b"".join(self._blocks[n] for n in range(first, last + 1))
        offset = first * self.block
        return data[start - offset : stop - offset]

    def _load(self, numbers: list[int]) -> None:
        with self._lock, storage_errors(self.url, f"read {self.url}"):
            for first, end in _runs([n for n in numbers if n not in self._blocks]):
                start, stop = first * self.block, min(end * self.block, self.size)
                data = filesystem(self.url).cat_file(self.url.path, start=start, end=stop)
                if len(data) != stop - start:
                    raise OSError(f"{self.url} changed while it was read ({len(data)} of {stop - start} bytes)")
                self.on_fetch(len(data))
                for number in range(first, end):
                    offset = (number - first) * self.block
                    self._blocks[number] = data[offset : offset + self.block]
