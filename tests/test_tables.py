"""Piped tables are written without rich, and read exactly as rich would have written them.

`cli.tables.plain_text` stands in for rich only where its output is known to
be the same; these tests hold it to that on random tables and on the `show`
and `diff` output of every fixture and real model.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from smsurgery.cli import common
from smsurgery.cli.common import PIPED_WIDTH
from smsurgery.cli.diff_output import render_diff
from smsurgery.cli.show_output import render_show
from smsurgery.cli.tables import Column, TextTable, plain_text, rich_table
from smsurgery.core.errors import SmsurgeryError
from smsurgery.inspect.describe import describe
from smsurgery.inspect.diff import diff
from tests.conftest import FIXTURE_MODELS, REALMODELS, fixture_model_names, real_model_names


def _rich_text(renderable: object, width: int) -> str:
    """What smsurgery's own stdout console (cli.common._console, on a pipe) writes for `renderable`."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, highlight=False, soft_wrap=True, markup=False, emoji=False)
    console.print(renderable)
    return buffer.getvalue()


# Mostly the characters smsurgery's cells hold, with some that rich lays out differently.
_CHARACTERS = st.sampled_from([*"abcXYZ019 _-:/[](),.'@#\\", "\t", "\n", "é", "界", "\x1b", "\r"])
_TEXT = st.text(_CHARACTERS, max_size=12)


@st.composite
def tables(draw: st.DrawFn) -> TextTable:
    justify, overflow = st.sampled_from(["left", "right"]), st.sampled_from(["ellipsis", "fold"])
    columns = [Column(draw(_TEXT), draw(justify), draw(overflow)) for _ in range(draw(st.integers(1, 5)))]
    table = TextTable(draw(_TEXT), columns, title_style=draw(st.sampled_from([None, "bold"])))
    for _ in range(draw(st.integers(0, 4))):
        table.add_row(*(draw(_TEXT) if draw(st.booleans()) else (draw(_TEXT), "bold red") for _ in columns))
    return table


@settings(max_examples=400, deadline=None)
@given(tables(), st.sampled_from([12, 40, 80, PIPED_WIDTH]))
def test_a_plain_table_is_what_rich_writes_or_nothing(table: TextTable, width: int) -> None:
    text = plain_text(table, width)
    if text is not None:
        assert text == _rich_text(rich_table(table), width)


@settings(max_examples=200, deadline=None)
@given(tables())
def test_one_line_ascii_tables_that_fit_are_written_plain(table: TextTable) -> None:
    texts = [table.title, *(c.header for c in table.columns)]
    texts += [cell if isinstance(cell, str) else cell[0] for row in table.rows for cell in row]
    if all(text.isascii() and text.isprintable() for text in texts):
        assert plain_text(table, PIPED_WIDTH) == _rich_text(rich_table(table), PIPED_WIDTH)


def test_a_row_of_the_wrong_length_is_refused() -> None:
    table = TextTable("t", [Column("a"), Column("b")])
    with pytest.raises(ValueError, match="a row of 1 cells for 2 columns"):
        table.add_row("x")


@contextlib.contextmanager
def _stdout_through_rich() -> Iterator[io.StringIO]:
    """smsurgery's stdout console, built (so every line and table goes through rich), writing to a buffer."""
    buffer = io.StringIO()
    lazy = common.out
    lazy._console = Console(  # type: ignore[attr-defined]
        file=buffer, width=PIPED_WIDTH, highlight=False, soft_wrap=True, markup=False, emoji=False
    )
    try:
        yield buffer
    finally:
        lazy._console = None  # type: ignore[attr-defined]


def _both_ways(render: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The text `render` writes to a pipe (the plain path), and through rich, both at smsurgery's piped width."""
    monkeypatch.delenv("COLUMNS", raising=False)  # pytest-xdist's workers may have it set
    assert not common.out.built  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(io.StringIO()) as piped:
            render()
        assert not common.out.built, "a table or line went through rich on a pipe"  # type: ignore[attr-defined]
    finally:
        common.out._console = None  # type: ignore[attr-defined]
    with _stdout_through_rich() as drawn:
        render()
    return piped.getvalue(), drawn.getvalue()


def _models() -> list[Path]:
    return [FIXTURE_MODELS / name for name in fixture_model_names()] + [REALMODELS / n for n in real_model_names()]


@pytest.mark.parametrize("model", _models(), ids=lambda p: p.name)
def test_show_writes_to_a_pipe_what_rich_writes(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        report = describe(model, ops=True)
    except SmsurgeryError as error:  # no [serve] meta graph, or a model show refuses: nothing to draw
        pytest.skip(str(error))
    piped, drawn = _both_ways(lambda: render_show(report), monkeypatch)
    assert piped == drawn
    assert "┏" in piped


@pytest.mark.parametrize("pair", list(zip(_models(), _models()[1:] + _models()[:1], strict=True)),
                         ids=lambda pair: f"{pair[0].name}-vs-{pair[1].name}")  # fmt: skip
def test_diff_writes_to_a_pipe_what_rich_writes(pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        changed, unchanged = diff(*pair), diff(pair[0], pair[0])
    except SmsurgeryError as error:
        pytest.skip(str(error))
    for report in (changed, unchanged):
        piped, drawn = _both_ways(lambda report=report: render_diff(report), monkeypatch)
        assert piped == drawn
