"""The curves a backtest result keeps for its charts: equity, buy-and-hold, drawdown and the close.

All four share one time axis: the positions :func:`ktrdr.downsampling.extreme_indices` keeps for
the equity, the drawdown and the close (buy-and-hold is the close scaled, so it peaks with it), at
most ``max_points`` of them. Values are computed on every bar first and only then picked, so a
kept drawdown is the exact drawdown of that bar.

- ``buy_and_hold``: the initial capital put into the instrument at the first bar's close and held,
  with no costs: ``initial_capital x close / close[0]``.
- ``drawdown``: ``1 - equity / running peak`` (:func:`ktrdr.backtesting.metrics.drawdowns`), a
  positive fraction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ktrdr.backtesting.metrics import drawdowns
from ktrdr.downsampling import compact, extreme_indices

CURVE_POINTS = 1000


def buy_and_hold(close: np.ndarray, initial_capital: float) -> np.ndarray:
    """The equity of holding from the first close on, without costs."""
    prices = np.asarray(close, dtype=np.float64)
    return initial_capital * prices / prices[0] if prices.size else prices


def result_curves(
    index: pd.DatetimeIndex,
    equity: np.ndarray,
    close: np.ndarray,
    initial_capital: float,
    max_points: int = CURVE_POINTS,
) -> dict[str, Any]:
    """The ``curves`` section of a backtest result (JSON-safe; see the module docstring)."""
    equity = np.asarray(equity, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    drawdown = drawdowns(equity)
    held = buy_and_hold(close, initial_capital)
    picks = extreme_indices([equity, drawdown, close], max_points) if equity.size else np.array([], int)
    return {
        "bars": int(equity.size),
        "points": int(picks.size),
        "timestamps": [index[i].isoformat() for i in picks.tolist()],
        "equity": compact(equity[picks]),
        "buy_and_hold": compact(held[picks]),
        "drawdown": compact(drawdown[picks]),
        "close": compact(close[picks]),
    }
