"""Performance metrics of an equity curve, and statistics of a list of trades.

Definitions (``r`` are the simple returns of the curve, ``n`` their number, ``ppy`` the periods
per year):

* ``total_return`` = final / initial - 1
* ``annualized_return`` = (final / initial) ** (ppy / n) - 1 (compound); -1.0 when the curve ends at or
  below zero
* ``volatility`` = sample std of ``r`` (ddof 1) x sqrt(ppy)
* ``sharpe_ratio`` = mean(r) / std(r) x sqrt(ppy), risk-free rate 0, sample std
* ``sortino_ratio`` = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(ppy)
* ``max_drawdown`` = max over t of 1 - equity_t / max(equity_0..t), a positive fraction (0 when the
  curve never falls)
* ``calmar_ratio`` = annualized_return / max_drawdown

Undefined values are ``None``, never NaN or infinity, so results stay JSON-safe:
``annualized_return`` with no returns (one bar) or when compounding overflows a float;
``volatility`` and ``sharpe_ratio`` with fewer than two returns, and ``sharpe_ratio`` when the
returns do not vary (flat equity); ``sortino_ratio`` with no negative return; ``calmar_ratio``
when there is no drawdown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from ktrdr.errors import ValidationError


class PerformanceMetrics(TypedDict):
    total_return: float
    annualized_return: float | None
    volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float
    calmar_ratio: float | None
    periods: int
    periods_per_year: float
    initial_equity: float
    final_equity: float


def performance_metrics(equity: pd.Series, periods_per_year: float) -> PerformanceMetrics:
    """The metrics above for ``equity`` (one value per bar, in time order)."""
    if periods_per_year <= 0 or not math.isfinite(periods_per_year):
        raise ValidationError(f"periods_per_year must be a positive number, got {periods_per_year}")
    values = np.asarray(equity, dtype=np.float64)
    if values.size == 0:
        raise ValidationError("an equity curve needs at least one value")
    if not np.all(np.isfinite(values)):
        raise ValidationError("the equity curve contains NaN or infinite values")
    initial, final = float(values[0]), float(values[-1])
    if initial <= 0:
        raise ValidationError(f"the equity curve must start above zero, got {initial}")

    returns = _simple_returns(values)
    n = returns.size
    total_return = final / initial - 1.0

    annualized: float | None = None
    if n > 0:
        annualized = _compound(final / initial, periods_per_year / n) if final > 0 else -1.0

    volatility: float | None = None
    sharpe: float | None = None
    if n >= 2:
        std = float(np.std(returns, ddof=1))
        volatility = std * math.sqrt(periods_per_year)
        if std > 0:
            sharpe = float(np.mean(returns)) / std * math.sqrt(periods_per_year)

    sortino: float | None = None
    if n >= 1:
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            sortino = float(np.mean(returns)) / downside * math.sqrt(periods_per_year)

    max_drawdown = max(0.0, float(drawdowns(values).max()))
    calmar = annualized / max_drawdown if annualized is not None and max_drawdown > 0 else None

    return {
        "total_return": total_return,
        "annualized_return": _finite(annualized),
        "volatility": _finite(volatility),
        "sharpe_ratio": _finite(sharpe),
        "sortino_ratio": _finite(sortino),
        "max_drawdown": max_drawdown,
        "calmar_ratio": _finite(calmar),
        "periods": int(values.size),
        "periods_per_year": float(periods_per_year),
        "initial_equity": initial,
        "final_equity": final,
    }


def drawdowns(equity: np.ndarray) -> np.ndarray:
    """Per bar, ``1 - equity / max(equity so far)``: 0 at a new high, a positive fraction below it
    (above 1 once the account is below zero); 0 while no peak above zero has been seen."""
    values = np.asarray(equity, dtype=np.float64)
    peaks = np.maximum.accumulate(values)
    return np.where(peaks > 0, 1.0 - values / np.where(peaks > 0, peaks, 1.0), 0.0)


def trade_statistics(trades: Iterable[Any]) -> dict[str, float | int | None]:
    """Count, win rate, profit factor and friends over trades (objects or mappings with
    ``net_pnl`` and optionally ``bars_held``).

    ``win_rate`` and the averages are ``None`` with no trades; ``profit_factor`` (gross wins /
    gross losses) is ``None`` when nothing was lost.
    """
    pnls: list[float] = []
    held: list[int] = []
    for trade in trades:
        pnls.append(float(_field(trade, "net_pnl")))
        bars = _field(trade, "bars_held", None)
        if bars is not None:
            held.append(int(bars))
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_win, gross_loss = sum(wins), -sum(losses)
    count = len(pnls)
    return {
        "total_trades": count,
        "winning_trades": len(wins),
        "losing_trades": len(losses),
        "win_rate": len(wins) / count if count else None,
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else None,
        "total_net_pnl": float(sum(pnls)),
        "avg_net_pnl": sum(pnls) / count if count else None,
        "avg_win": gross_win / len(wins) if wins else None,
        "avg_loss": -gross_loss / len(losses) if losses else None,
        "largest_win": max(wins) if wins else None,
        "largest_loss": min(losses) if losses else None,
        "avg_bars_held": sum(held) / len(held) if held else None,
    }


def periods_per_year(index: pd.DatetimeIndex, timeframe: str) -> float:
    """Bars per year, measured from the index's own calendar (so 24/7 and exchange-hours data are
    both annualised right); falls back to the nominal timeframe when there are under two bars."""
    if len(index) >= 2:
        span_years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400.0)
        if span_years > 0:
            return (len(index) - 1) / span_years
    return nominal_periods_per_year(timeframe)


def nominal_periods_per_year(timeframe: str) -> float:
    """Bars per year of a timeframe: 252 trading days, 52 weeks, and 24h days for intraday."""
    if timeframe == "1d":
        return 252.0
    if timeframe == "1w":
        return 52.0
    minutes = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240}.get(timeframe)
    if minutes is None:
        raise ValidationError(f"unknown timeframe {timeframe!r}")
    return 365.25 * 24 * 60 / minutes


def _compound(growth: float, exponent: float) -> float | None:
    try:
        return growth**exponent - 1.0
    except OverflowError:  # a tiny sample annualised into an astronomic number
        return None


def _simple_returns(values: np.ndarray) -> np.ndarray:
    previous = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous != 0, values[1:] / np.where(previous != 0, previous, 1.0) - 1.0, 0.0)
    return returns


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _field(item: Any, name: str, default: Any = ...) -> Any:
    if isinstance(item, Mapping):
        return item[name] if default is ... else item.get(name, default)
    return getattr(item, name) if default is ... else getattr(item, name, default)
