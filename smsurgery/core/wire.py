"""The protocol-buffer wire format, read by hand where parsing a message would cost what a reader avoids.

The skim seeks past `graph_def`, the splice copies field spans verbatim,
the lean scan leaves frozen weights in the file, and the proto pool, the
checkpoint index and format sniffing read a few varints: all through these
two functions, so there is one rule for what counts as a plain message
(anything else is left to protobuf, which names the damage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LENGTH_DELIMITED = 2
MAX_FIELD_NUMBER = (1 << 29) - 1  # protobuf refuses larger field numbers: so do the walks


@dataclass(frozen=True)
class FieldSpan:
    """One field occurrence: `start`..`end` is tag + length + payload; payload starts at `body`."""

    number: int
    wire_type: int
    start: int
    body: int
    end: int


def varint(data: Any, position: int, end: int) -> tuple[int, int] | None:
    """(value, position after it), or None when it runs past `end` or over 64 bits."""
    result, shift = 0, 0
    while position < end and shift < 64:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
    return None


def read_varint(data: Any, position: int) -> tuple[int, int]:
    """`varint` up to the end of `data`, raising ValueError where it returns None."""
    found = varint(data, position, len(data))
    if found is None:
        raise ValueError("truncated varint")
    return found


def walk_fields(data: Any, start: int, end: int, limit: int | None = None) -> list[FieldSpan] | None:
    """The fields between `start` and `end`; None when the bytes are not a plain message or hold over `limit`."""
    found: list[FieldSpan] = []
    position = start
    while position < end:
        tag = varint(data, position, end)
        if tag is None or not 0 < tag[0] >> 3 <= MAX_FIELD_NUMBER or (limit is not None and len(found) >= limit):
            return None
        (key, body), wire_type = tag, tag[0] & 7
        if wire_type == 0:
            value = varint(data, body, end)
            if value is None:
                return None
            field_end = value[1]
        elif wire_type in (1, 5):
            field_end = body + (8 if wire_type == 1 else 4)
        elif wire_type == LENGTH_DELIMITED:
            length = varint(data, body, end)
            if length is None:
                return None
            body, field_end = length[1], length[1] + length[0]
        else:  # groups (3, 4) and invalid wire types: leave them to protobuf
            return None
        if field_end > end:
            return None
        found.append(FieldSpan(key >> 3, wire_type, position, body, field_end))
        position = field_end
    return found
