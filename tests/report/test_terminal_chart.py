"""The terminal chart after a backtest, rendered at fixed sizes and read back as a person would."""

from __future__ import annotations

import datetime as dt
import io
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from results_factory import (
    PEAK_AT,
    START,
    TROUGH_AT,
    backtest_result,
    damaged_operations,
    older_backtest_result,
)
from rich.console import Console

from ktrdr.errors import MissingDependencyError
from ktrdr.report.results import backtest_curves
from ktrdr.report.terminal import X_AXIS_TAIL, Y_AXIS_WIDTH, backtest_chart, print_backtest_chart

BLANK_BRAILLE = "\u2800"


def is_dot(char: str) -> bool:
    return "\u2800" < char <= "\u28ff"


def canvas_rows(chart: str, label: str) -> list[str]:
    """The canvas rows of the panel whose axis is labelled ``label`` (top to bottom)."""
    lines = chart.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(f"({label})")) + 2
    rows = []
    for line in lines[first:]:
        canvas = line[Y_AXIS_WIDTH:]
        if not canvas or not all(c == BLANK_BRAILLE or is_dot(c) for c in canvas):
            break
        rows.append(canvas)
    return rows


# Braille dot bits by (x, y) inside a cell of 2 x 4 dots.
DOT_BITS = {
    (0, 0): 0x01,
    (0, 1): 0x02,
    (0, 2): 0x04,
    (1, 0): 0x08,
    (1, 1): 0x10,
    (1, 2): 0x20,
    (0, 3): 0x40,
    (1, 3): 0x80,
}


def dots(rows: list[str]) -> set[tuple[int, int]]:
    """The (x, y) of every dot drawn, y growing downwards, in dot units (2 per column, 4 per row)."""
    found = set()
    for row_number, row in enumerate(rows):
        for column, char in enumerate(row):
            bits = ord(char) - 0x2800
            found |= {
                (2 * column + dx, 4 * row_number + dy) for (dx, dy), bit in DOT_BITS.items() if bits & bit
            }
    return found


def along(rows: list[str], lowest: bool) -> float:
    """Where the highest (or lowest) dot of the panel lies, as a fraction of its width."""
    drawn = dots(rows)
    edge = max(y for _, y in drawn) if lowest else min(y for _, y in drawn)
    xs = [x for x, y in drawn if y == edge]
    return (sum(xs) / len(xs)) / (2 * len(rows[0]))


@pytest.fixture(autouse=True)
def _plotille() -> None:
    pytest.importorskip("plotille", reason="the terminal chart needs the report extra")


@pytest.mark.parametrize(("width", "height"), [(80, 20), (120, 30), (40, 13)])
def test_the_chart_fits_the_size_and_shows_the_peak_and_the_trough_where_they_are(width, height) -> None:
    curves = backtest_curves(backtest_result(points=600))
    chart = backtest_chart(curves, width=width, height=height, colours=False)
    lines = chart.splitlines()
    assert len(lines) == height
    assert max(len(line) for line in lines) <= width
    assert lines[0].startswith("equity: strategy, buy & hold (no costs)")
    equity, drawdown = canvas_rows(chart, "equity"), canvas_rows(chart, "drawdown")
    canvas_width = width - Y_AXIS_WIDTH - X_AXIS_TAIL
    assert {len(r) for r in equity + drawdown} == {canvas_width}
    assert len(equity) + len(drawdown) == height - 7
    # The highest dot is the equity's peak (30 % along the time axis), the drawdown's lowest dot its
    # trough (70 % along); within two columns, whatever the width.
    assert abs(along(equity, lowest=False) - PEAK_AT) <= 2 / canvas_width
    assert abs(along(drawdown, lowest=True) - TROUGH_AT) <= 2 / canvas_width
    # Before the peak the drawdown is zero: the top row holds the flat start of the line.
    assert is_dot(drawdown[0][0])
    assert "24-01-01" in lines[-1]  # the time axis starts at the first bar


def test_colours_only_add_escape_codes(monkeypatch) -> None:
    from rich.text import Text

    monkeypatch.setenv("FORCE_COLOR", "1")  # plotille colours only what goes to a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)

    curves = backtest_curves(backtest_result(points=200))
    plain = backtest_chart(curves, width=90, height=18, colours=False)
    coloured = backtest_chart(curves, width=90, height=18, colours=True)
    assert "\x1b[" in coloured and "\x1b[" not in plain
    visible = Text.from_ansi(coloured).plain.splitlines()
    assert len(visible) == 18 and max(len(line) for line in visible) <= 90
    assert [
        line.replace(" (green)", "").replace(" (white, no costs)", " (no costs)") for line in visible[:1]
    ] == (plain.splitlines()[:1])


def test_an_older_result_draws_its_equity_alone() -> None:
    chart = backtest_chart(backtest_curves(older_backtest_result()), width=80, height=16, colours=False)
    assert chart.splitlines()[0].startswith("equity: strategy; drawdown below")
    assert any(is_dot(c) for row in canvas_rows(chart, "equity") for c in row)


def test_a_terminal_gets_the_chart_sized_to_it_and_a_pipe_gets_text() -> None:
    result = backtest_result(points=300)
    terminal = Console(file=io.StringIO(), width=100, height=40, force_terminal=True, color_system=None)
    print_backtest_chart(terminal, result)
    drawn = terminal.file.getvalue().splitlines()
    assert len(drawn) == 20 and max(len(line) for line in drawn) <= 100
    pipe = Console(file=io.StringIO(), width=100, force_terminal=False)
    print_backtest_chart(pipe, result)
    assert pipe.file.getvalue().splitlines() == [
        "equity 100,000 -> 95,000 (-5.0%) from 2024-01-01 to 2024-01-13; buy & hold +4.2% (no costs)",
        "deepest drawdown 34.5% on 2024-01-09 18:00 UTC",
    ]


def test_without_the_extra_a_terminal_gets_the_text_and_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "plotille", None)  # as if the report extra were not installed
    with pytest.raises(MissingDependencyError, match=r"the terminal chart needs the 'report' extra"):
        backtest_chart(backtest_curves(backtest_result()), width=80, height=20)
    terminal = Console(file=io.StringIO(), width=100, height=40, force_terminal=True, color_system=None)
    print_backtest_chart(terminal, backtest_result())
    shown = terminal.file.getvalue()
    assert "pip install 'ktrdr[report]'" in shown and shown.count("\n") == 3
    assert "deepest drawdown" in shown


def test_too_small_a_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 40 x 13"):
        backtest_chart(backtest_curves(backtest_result()), width=39, height=20)


def terminal(width: int = 100) -> Console:
    return Console(file=io.StringIO(), width=width, height=40, force_terminal=True, color_system=None)


def printed(result: dict[str, Any], width: int = 100) -> list[str]:
    """What ``ops show`` prints for ``result`` on a terminal ``width`` wide (a chart fits it), after
    checking that a pipe gets it too."""
    shown = []
    for console in (terminal(width), Console(file=io.StringIO(), width=width, force_terminal=False)):
        print_backtest_chart(console, result)
        lines = console.file.getvalue().splitlines()
        if any(is_dot(c) for line in lines for c in line):
            assert all(len(line) <= width for line in lines), lines
        shown.append(lines)
    return shown[0]


@pytest.mark.parametrize(
    ("equity", "same_time"),
    [
        ([100.0, 110.0, 105.0], True),  # every point at one time (a run of one bar, or damaged)
        ([1e308, -1e308, 0.0], False),  # a span no float holds
        ([100.0, float("inf"), 90.0], False),
        ([float("nan")] * 3, False),
    ],
)
def test_a_degenerate_curve_gives_the_chart_or_its_text_never_an_error(
    equity: list[float], same_time: bool
) -> None:
    times = [START if same_time else START + dt.timedelta(hours=h) for h in range(3)]
    result = {
        "curves": {
            "timestamps": [t.isoformat() for t in times],
            "equity": equity,
            "drawdown": [0.0, 0.1, 0.0],
        }
    }
    assert printed(result)


def _points(draw: st.DrawFn, n: int) -> list[float | None]:
    value = st.none() | st.floats() | st.floats(min_value=-1e6, max_value=1e6)
    return draw(st.lists(value, min_size=n, max_size=n))


@st.composite
def any_curves(draw: st.DrawFn) -> dict[str, Any]:
    """Curves on an ordered time axis that may stand still (equal times), with any floats."""
    n = draw(st.integers(min_value=1, max_value=12))
    steps = draw(st.lists(st.integers(min_value=0, max_value=3), min_size=n, max_size=n))
    times = [START + dt.timedelta(hours=sum(steps[: i + 1])) for i in range(n)]
    curves = {
        "timestamps": [t.isoformat() for t in times],
        "equity": _points(draw, n),
        "drawdown": _points(draw, n),
    }
    if draw(st.booleans()):
        curves["buy_and_hold"] = _points(draw, n)
    return {"curves": curves}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(result=any_curves(), width=st.integers(min_value=20, max_value=160))
@example(
    result={"curves": {"timestamps": [START.isoformat()] * 2, "equity": [1.0, 2.0], "drawdown": [0.0, 0.0]}},
    width=80,
)
def test_any_curve_gives_the_chart_or_its_text_never_an_error(result: dict[str, Any], width: int) -> None:
    printed(result, width)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_operations())
def test_any_damaged_result_gives_the_chart_or_its_text_never_an_error(op: dict[str, Any]) -> None:
    printed(op["result"])
