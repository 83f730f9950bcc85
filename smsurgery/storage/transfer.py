"""The bytes this process moved to, from and inside object storage: one counter.

Its own module so that an edit of a local model, which reports the counter
(all zeros), does not import the storage machinery that moves bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Transfer:
    """Bytes this process moved: through this machine (down, up), and copied inside the store."""

    downloaded: int = 0
    uploaded: int = 0
    copied: int = 0

    def since(self, start: Transfer) -> Transfer:
        """What moved after `start` (a copy taken earlier): one command's share of the process totals."""
        return Transfer(self.downloaded - start.downloaded, self.uploaded - start.uploaded, self.copied - start.copied)

    def snapshot(self) -> Transfer:
        return Transfer(self.downloaded, self.uploaded, self.copied)

    def to_json(self) -> dict[str, int]:
        return {"bytes_downloaded": self.downloaded, "bytes_uploaded": self.uploaded, "bytes_copied": self.copied}


TRANSFER = Transfer()
