"""The terminal chart a backtest ends with: its equity against buy-and-hold, the drawdown underneath.

Drawn with plotille (braille dots: 2 x 4 points per character cell) to the terminal's width and
about half its height. When the output is not a terminal (a pipe, a file, CI) the chart degrades
to two lines of text that say what it shows: the equity's start and end against buy-and-hold, and
the deepest drawdown with its date. Without the ``report`` extra a terminal gets the same text and
a hint to install it, and so does a curve the chart cannot scale (points that are not finite are
left out; a time axis that does not move gets a day).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from ktrdr.errors import MissingDependencyError
from ktrdr.report import require
from ktrdr.report.results import Curves, backtest_curves

if TYPE_CHECKING:
    from rich.console import Console

# plotille's layout: a 10-character tick label and " | " left of the canvas; the time axis adds
# "-> (UTC)" right of it. The legend line comes first; the equity panel has two header lines, the
# drawdown panel two header lines and the two lines of the time axis.
Y_AXIS_WIDTH = 13
X_LABEL = "UTC"
X_AXIS_TAIL = len(f"|-> ({X_LABEL})")
FIXED_LINES = 1 + 2 + 2 + 2
MIN_WIDTH, MIN_HEIGHT = 40, 13
STRATEGY_COLOUR, BENCHMARK_COLOUR, DRAWDOWN_COLOUR = "green", "white", "red"


def print_backtest_chart(console: Console, result: Mapping[str, Any]) -> None:
    """The chart (or its text) for a backtest result; nothing for a result with no curve at all."""
    from rich.text import Text

    curves = backtest_curves(result)
    if curves is None:
        return
    if console.is_terminal and console.width >= MIN_WIDTH:
        try:
            colours = console.color_system is not None  # None: NO_COLOR, or a terminal without colours
            chart = backtest_chart(
                curves, width=console.width, height=chart_height(console.height), colours=colours
            )
        except MissingDependencyError as exc:
            _note(console, exc.message)
        except (ValueError, ArithmeticError) as exc:
            # Data plotille cannot scale (a span no float holds, say): the text still says what it shows.
            _note(console, f"these values cannot be drawn ({exc})")
        else:
            console.print(Text.from_ansi(chart), soft_wrap=True)
            return
    for line in summary_lines(curves):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _note(console: Console, why: str) -> None:
    console.print(f"(no chart: {why})", style="dim", markup=False, highlight=False, soft_wrap=True)


def chart_height(terminal_height: int) -> int:
    """About half the terminal, within 13 to 32 lines."""
    return max(MIN_HEIGHT, min(32, terminal_height // 2))


def backtest_chart(curves: Curves, *, width: int, height: int, colours: bool = True) -> str:
    """Equity and buy-and-hold over the drawdown, at most ``width`` characters wide and exactly
    ``height`` lines tall (at least 40 x 13)."""
    plotille = require("plotille", "the terminal chart")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"a chart needs at least {MIN_WIDTH} x {MIN_HEIGHT} characters")
    canvas_width = width - Y_AXIS_WIDTH - X_AXIS_TAIL
    rows = height - FIXED_LINES
    equity_rows = max(2, round(rows * 2 / 3))
    times = curves.utc

    def panel(label: str, rows: int, with_x_axis: bool) -> Any:
        figure = plotille.Figure()
        figure.width, figure.height = canvas_width, rows
        figure.with_colors, figure.origin = colours, False
        figure.x_label, figure.y_label = X_LABEL, label
        figure.with_x_axis = with_x_axis
        figure.set_x_display_timezone(dt.UTC)
        # A time axis that does not move (one bar, or equal times) gets a day, or plotille refuses it.
        figure.set_x_limits(min_=times[0], max_=max(times[-1], times[0] + dt.timedelta(1)))
        return figure

    equity = panel("equity", equity_rows, with_x_axis=False)
    equity.y_ticks_fkt = lambda value, _next: _money(value)
    _plot(equity, times, curves.equity, STRATEGY_COLOUR)
    if curves.buy_and_hold is not None:
        _plot(equity, times, curves.buy_and_hold, BENCHMARK_COLOUR)

    drawdown = panel("drawdown", rows - equity_rows, with_x_axis=True)
    drawdown.y_ticks_fkt = lambda value, _next: f"{value:.1f}%"
    below = [-100.0 * d if _finite(d) else None for d in curves.drawdown]
    deepest = min([v for v in below if v is not None] + [-1.0])
    drawdown.set_y_limits(min_=deepest, max_=0.0)
    # plotille rounds a point on the upper limit off the canvas; every new high is at zero, so draw
    # those just under it (0.6 of a dot: invisible, and on the top row).
    top = 0.6 * -deepest / (4 * drawdown.height)
    below = [min(v, -top) if v is not None else None for v in below]
    _plot(drawdown, times, below, DRAWDOWN_COLOUR)

    legend = "strategy (green)" if colours else "strategy"
    if curves.buy_and_hold is not None:
        legend += ", buy & hold (white, no costs)" if colours else ", buy & hold (no costs)"
    legend = f"equity: {legend}; drawdown below, in % of the peak"
    return "\n".join([legend[:width], equity.show(), drawdown.show()])


def summary_lines(curves: Curves) -> list[str]:
    """What the chart shows, as text."""
    times = curves.utc
    points = [(t, e) for t, e in zip(times, curves.equity, strict=True) if e is not None]
    if not points:
        return []
    (start, first), (end, last) = points[0], points[-1]
    change = f" ({last / first - 1:+.1%})" if first > 0 else ""
    line = f"equity {_money(first)} -> {_money(last)}{change} from {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    held = [v for v in curves.buy_and_hold or [] if v is not None]
    if held and held[0] > 0:
        line += f"; buy & hold {held[-1] / held[0] - 1:+.1%} (no costs)"
    lines = [line]
    depths = [(d, t) for d, t in zip(curves.drawdown, times, strict=True) if d is not None]
    if depths:
        depth, at = max(depths, key=lambda pair: pair[0])
        lines.append(f"deepest drawdown {depth:.1%} on {at:%Y-%m-%d %H:%M} UTC")
    return lines


def _plot(figure: Any, times: list[dt.datetime], values: list[float | None], colour: str) -> None:
    """Plot the points that have a finite value (a gap joins its neighbours)."""
    pairs = [(t, v) for t, v in zip(times, values, strict=True) if _finite(v)]
    if pairs:
        xs, ys = zip(*pairs, strict=True)
        figure.plot(list(xs), list(ys), lc=colour)


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _money(value: float) -> str:
    return f"{value:,.0f}" if 1000 <= abs(value) < 1e15 else f"{value:.4g}"
