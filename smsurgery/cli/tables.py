"""The tables of a command's text output: drawn by rich on a terminal, written without it to a pipe.

Importing rich's Table and building a Console costs ~50 ms, a third of a piped
`diff` on a small model (issue 14). What rich writes to a pipe for the tables
smsurgery draws is fixed: the heavy-head box, one space of padding, each column
as wide as its widest cell, the title on its own line. `plain_text` writes
exactly that, and gives up (None) on anything rich would lay out differently
(a cell that is not one line of printable ASCII, a table wider than the
console), so rich draws those. tests/test_tables.py holds the two equal.
Every command draws its tables through `print_table`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smsurgery.cli.common import PIPED_WIDTH, out, piped_stdout

if TYPE_CHECKING:
    from rich.table import Table

Cell = str | tuple[str, str]  # text, or (text, rich style) for a terminal


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"  # or "right"
    overflow: str = "ellipsis"  # how rich cuts a cell that does not fit; "fold" wraps it whole


@dataclass
class TextTable:
    """A titled table of one-line cells, as rich's `Table(title=..., title_justify="left")` draws it."""

    title: str
    columns: Sequence[Column]
    title_style: str | None = None
    rows: list[tuple[Cell, ...]] = field(default_factory=list)

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)


def print_table(table: TextTable) -> None:
    """The table on stdout: plain text when stdout is a pipe and rich would write the same, else through rich."""
    if piped_stdout():
        width = _console_width()
        text = plain_text(table, width) if width is not None else None
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    out.print(rich_table(table))


def _console_width() -> int | None:
    """The width rich gives a console on a pipe: $COLUMNS when it is a number, else smsurgery's piped width."""
    columns = os.environ.get("COLUMNS")
    if columns is None:
        return PIPED_WIDTH
    return int(columns) if columns.isdigit() else None  # rich's own fallback for a bad value: leave it to rich


def _one_line_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]


def plain_text(table: TextTable, width: int) -> str | None:
    """What rich writes for `table` to a `width`-column pipe, or None where its layout would differ."""
    cells = [[_text(cell) for cell in row] for row in table.rows]
    texts = [table.title, *(c.header for c in table.columns), *(text for row in cells for text in row)]
    if not all(_one_line_ascii(text) for text in texts) or any(
        c.justify not in ("left", "right") for c in table.columns
    ):
        return None
    widths = [max([len(c.header), *(len(row[i]) for row in cells)]) for i, c in enumerate(table.columns)]
    if sum(widths) + 3 * len(widths) + 1 > width or len(table.title) > width:
        return None  # rich would shrink columns, wrap cells or the title

    def line(texts: Sequence[str], bar: str) -> str:
        padded = (
            text.rstrip().rjust(w) if column.justify == "right" else text.ljust(w)
            for text, w, column in zip(texts, widths, table.columns, strict=True)
        )
        return bar + bar.join(f" {text} " for text in padded) + bar

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (w + 2) for w in widths) + right

    lines = [table.title] if table.title else []
    lines += [rule("┏", "━", "┳", "┓"), line([c.header for c in table.columns], "┃"), rule("┡", "━", "╇", "┩")]
    lines += [line(row, "│") for row in cells]
    lines.append(rule("└", "─", "┴", "┘"))
    return "\n".join(lines) + "\n"


def rich_table(table: TextTable) -> Table:
    """The same table as a rich Table, for a terminal (and whatever `plain_text` gives up on)."""
    from rich.table import Table
    from rich.text import Text

    drawn = Table(title=table.title, title_justify="left", title_style=table.title_style)
    for column in table.columns:
        drawn.add_column(column.header, justify=column.justify, overflow=column.overflow)  # type: ignore[arg-type]
    for row in table.rows:
        drawn.add_row(*(cell if isinstance(cell, str) else Text(cell[0], style=cell[1]) for cell in row))
    return drawn
