"""What a stored result holds for its charts and tables, read defensively (pydantic, no numpy).

A backtest result of this version has ``curves`` (one time axis for equity, buy-and-hold, drawdown
and the close: :mod:`ktrdr.backtesting.curves`) and ``trades``; a result stored before that has an
evenly spaced ``equity_curve.sample`` instead, from which the equity and its drawdown (at those
points) can still be drawn. A training result has ``history`` (per-epoch losses and accuracies) and
each split's ``confusion_matrix``; older ones have neither. Anything missing or malformed reads as
None, so a chart or table that needs it is left out, never a crash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

# The metrics a backtest summary shows first, in this order (the rest follow).
HEADLINE_METRICS = (
    "total_return",
    "annualized_return",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
    "volatility",
    "total_trades",
    "win_rate",
    "profit_factor",
    "buy_and_hold_return",
)
# Result sections whose values are listed without a prefix; other ``*_metrics`` sections get one.
UNPREFIXED_SECTIONS = ("metrics", "trade_statistics")
CLASS_NAMES = ("BUY", "HOLD", "SELL")  # ktrdr.neural.classes, the order of confusion matrices


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _OnOneAxis(_Read):
    """Series that share one axis: the axis has a point at least, and each series present has a
    value per point."""

    axis: ClassVar[str]
    series: ClassVar[tuple[str, ...]]

    @model_validator(mode="after")
    def _one_axis(self) -> Self:
        n = len(getattr(self, self.axis))
        if n < 1:
            raise ValueError(f"{self.axis} is empty")
        for name in self.series:
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} values, {self.axis} {n}")
        return self


class Curves(_OnOneAxis):
    """Series on one time axis (UTC). ``drawdown`` is a positive fraction. ``legacy``: read from an
    older result's equity sample, so there is no buy-and-hold and no price, and the drawdown is
    the sample's own (its deepest point may lie between two samples)."""

    timestamps: list[dt.datetime]
    equity: list[float | None]
    drawdown: list[float | None]
    buy_and_hold: list[float | None] | None = None
    close: list[float | None] | None = None
    bars: int | None = None
    legacy: bool = False

    axis = "timestamps"
    series = ("equity", "drawdown", "buy_and_hold", "close")

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.timestamps != sorted(self.timestamps):
            raise ValueError("the time axis is not in order")
        return self

    @property
    def utc(self) -> list[dt.datetime]:
        """The time axis in UTC (a stored time without a zone is taken as UTC)."""
        return [_utc(t) for t in self.timestamps]


class Trade(_Read):
    trade_id: int
    side: str
    entry_time: dt.datetime
    exit_time: dt.datetime
    entry_price: float
    exit_price: float
    net_pnl: float
    return_pct: float | None = None
    bars_held: int | None = None
    exit_reason: str | None = None

    @property
    def entry_utc(self) -> dt.datetime:
        return _utc(self.entry_time)

    @property
    def exit_utc(self) -> dt.datetime:
        return _utc(self.exit_time)


class History(_OnOneAxis):
    """Per-epoch training curves (possibly downsampled: ``epochs`` says how many there were)."""

    epoch: list[int]
    train_loss: list[float | None]
    val_loss: list[float | None]
    train_accuracy: list[float | None]
    val_accuracy: list[float | None]
    epochs: int | None = None

    axis = "epoch"
    series = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def backtest_curves(result: Mapping[str, Any]) -> Curves | None:
    """The result's curves; from an older result, its equity sample; None when it has neither."""
    stored = result.get("curves")
    if isinstance(stored, Mapping):
        curves = _read(Curves, stored)
        if curves is None and "drawdown" not in stored and isinstance(stored.get("equity"), list):
            curves = _read(Curves, {**stored, "drawdown": drawdowns(stored["equity"])})
        if curves is not None:
            return curves
    equity_curve = result.get("equity_curve")
    sample = equity_curve.get("sample") if isinstance(equity_curve, Mapping) else None
    if isinstance(sample, list) and all(isinstance(p, Mapping) for p in sample):
        equity = [p.get("equity") for p in sample]
        timestamps = [p.get("timestamp") for p in sample]
        bars = result.get("bars")
        legacy = {"timestamps": timestamps, "equity": equity, "bars": bars, "legacy": True}
        return _read(Curves, {**legacy, "drawdown": drawdowns(equity)})
    return None


def backtest_trades(result: Mapping[str, Any]) -> list[Trade]:
    """The stored trades that read well (a malformed one is left out)."""
    trades = result.get("trades")
    if not isinstance(trades, list):
        return []
    read = (_read(Trade, t) for t in trades if isinstance(t, Mapping))
    return [t for t in read if t is not None]


def training_history(result: Mapping[str, Any]) -> History | None:
    stored = result.get("history")
    return _read(History, stored) if isinstance(stored, Mapping) else None


def confusion_matrix(result: Mapping[str, Any], split: str = "test") -> list[list[int]] | None:
    """``[true][predicted]`` counts of a split, classes in :data:`CLASS_NAMES` order, or None."""
    metrics = result.get(f"{split}_metrics")
    matrix = metrics.get("confusion_matrix") if isinstance(metrics, Mapping) else None
    size = len(CLASS_NAMES)
    if not (isinstance(matrix, list) and len(matrix) == size):
        return None
    if not all(isinstance(row, list) and len(row) == size for row in matrix):
        return None
    if not all(type(v) is int and v >= 0 for row in matrix for v in row):
        return None
    return [list(row) for row in matrix]


def drawdowns(equity: list[Any]) -> list[float | None]:
    """``1 - equity / running peak`` per point (as ktrdr.backtesting.metrics.drawdowns); None where
    the equity is not a number."""
    peak = 0.0
    out: list[float | None] = []
    for value in equity:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            out.append(None)
            continue
        peak = max(peak, float(value))
        out.append(1.0 - float(value) / peak if peak > 0 else 0.0)
    return out


def result_rows(result: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A result's scalar values as rows: the headline metrics first, then the rest."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, Mapping) and (key in UNPREFIXED_SECTIONS or key.endswith("_metrics")):
            prefix = "" if key in UNPREFIXED_SECTIONS else f"{key.removesuffix('_metrics')}."
            for inner, inner_value in value.items():
                if _scalar(inner_value):
                    flat.setdefault(prefix + inner, inner_value)
        elif _scalar(value):
            flat.setdefault(key, value)
    ordered = [k for k in HEADLINE_METRICS if k in flat] + [k for k in flat if k not in HEADLINE_METRICS]
    return [(k, flat[k]) for k in ordered]


def wiped_out_line(result: Mapping[str, Any]) -> str | None:
    """The warning for a backtest whose account went to or below zero; None otherwise, and for
    results stored before backtests recorded it."""
    if not result.get("wiped_out"):
        return None
    return (
        f"account wiped out at bar {result.get('wiped_out_bar')} ({result.get('wiped_out_at')}): "
        "equity at or below zero, nothing traded after it"
    )


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _read[M: _Read](model: type[M], data: Any) -> M | None:
    try:
        return model.model_validate(data)
    except (ValidationError, TypeError, ValueError):
        return None


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
