"""The backtest: a trained model's decisions over history, simulated with costs, and measured.

Pipeline: resolve and load the model -> load OHLCV -> features (the strategy's, in the model's
order) normalised with the model's own statistics -> one batched forward pass over all bars ->
decision rules -> position manager (fills at the next bar's open) -> performance metrics.

Bars whose features are still warming up get no decision. Data is read from ``start_date`` on, so
the first bars of a backtest are the indicators' warm-up.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from ktrdr.backtesting.curves import buy_and_hold, result_curves
from ktrdr.backtesting.decisions import decide, signals
from ktrdr.backtesting.metrics import performance_metrics, periods_per_year, trade_statistics
from ktrdr.backtesting.positions import Costs, Simulation, simulate
from ktrdr.data.store import load_ohlcv
from ktrdr.errors import InvalidDateRangeError, ValidationError
from ktrdr.features import Normalizer, build_features, feature_names
from ktrdr.jobs import CancelToken, Progress, ProgressCallback
from ktrdr.neural.classes import CLASS_NAMES, NUM_CLASSES
from ktrdr.neural.mlp import predict_proba
from ktrdr.strategy.schema import StrategyConfig
from ktrdr.training.model_storage import LoadedModel, load_model, model_path_within, resolve_model_path

log = structlog.get_logger(__name__)

MAX_TRADES_IN_RESULT = 1000
# A result travels to the backend in one request, under the backend's request-body limit (1 MiB by
# default, Settings.max_body_bytes); this is what one may take at most, envelope aside. A test
# checks the largest result a run can make (MAX_TRADES_IN_RESULT trades, CURVE_POINTS points).
RESULT_BUDGET_BYTES = 768 * 1024


class BacktestConfig(BaseModel):
    """What to backtest. ``symbol``/``timeframe`` default to the strategy's training data;
    ``model_path`` (absolute, or relative to the models directory) defaults to the latest model
    of the strategy for the timeframe. ``start``/``end`` are accepted for the dates too."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    strategy: StrategyConfig
    symbol: str | None = None
    timeframe: str | None = None
    start_date: dt.date | None = Field(default=None, validation_alias=AliasChoices("start_date", "start"))
    end_date: dt.date | None = Field(default=None, validation_alias=AliasChoices("end_date", "end"))
    initial_capital: float = 100_000.0
    commission: float = 0.001
    slippage: float = 0.0005
    position_fraction: float = 1.0
    model_path: Path | str | None = None

    @model_validator(mode="after")
    def _check_costs(self) -> BacktestConfig:
        self.costs()  # raises ktrdr's ValidationError (a 422 with a precise message)
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise InvalidDateRangeError(
                f"end_date {self.end_date} must be after start_date {self.start_date}"
            )
        return self

    @property
    def resolved_symbol(self) -> str:
        return self.symbol or self.strategy.training_data.symbol

    @property
    def resolved_timeframe(self) -> str:
        return self.timeframe or self.strategy.training_data.timeframe

    def costs(self) -> Costs:
        return Costs(self.initial_capital, self.commission, self.slippage, self.position_fraction)


@dataclass
class BacktestResult:
    strategy: str
    symbol: str
    timeframe: str
    model_path: str
    costs: Costs
    index: pd.DatetimeIndex
    close: np.ndarray
    probabilities: np.ndarray
    simulation: Simulation
    metrics: dict[str, Any]
    trade_stats: dict[str, Any]
    signal_counts: dict[str, int]
    model: dict[str, Any] = field(default_factory=dict)  # LoadedModel.provenance()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def bars(self) -> int:
        return len(self.index)

    @property
    def equity(self) -> pd.Series:
        return pd.Series(self.simulation.equity, index=self.index, name="equity")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: metrics, trade statistics, the first trades (``trades_total`` says how many
        there were), the curves a chart needs (:mod:`ktrdr.backtesting.curves`), whether and from
        which bar the account was wiped out, bars, the model used, costs and timings."""
        trades = self.simulation.trades
        equity = self.simulation.equity
        wiped = self.simulation.wiped_out_bar
        held = buy_and_hold(self.close, self.costs.initial_capital)
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "model_path": self.model_path,
            "model": dict(self.model),
            "start": self.index[0].isoformat() if self.bars else None,
            "end": self.index[-1].isoformat() if self.bars else None,
            "bars": self.bars,
            # Bars count from 0 at ``start``; after this bar nothing was traded (docs/models.md).
            "wiped_out": wiped is not None,
            "wiped_out_bar": wiped,
            "wiped_out_at": self.index[wiped].isoformat() if wiped is not None else None,
            "config": {
                "initial_capital": self.costs.initial_capital,
                "commission": self.costs.commission,
                "slippage": self.costs.slippage,
                "position_fraction": self.costs.position_fraction,
            },
            "metrics": dict(self.metrics),
            # The benchmark: the same capital held from the first close on, without costs.
            "buy_and_hold_return": float(held[-1] / held[0] - 1.0) if held.size else None,
            "trade_statistics": dict(self.trade_stats),
            "signals": dict(self.signal_counts),
            "trades_total": len(trades),
            "trades_truncated": len(trades) > MAX_TRADES_IN_RESULT,
            "trades": [t.to_dict() for t in trades[:MAX_TRADES_IN_RESULT]],
            "equity_curve": {
                "points": int(equity.size),
                "initial": float(equity[0]) if equity.size else None,
                "final": float(equity[-1]) if equity.size else None,
                "min": float(equity.min()) if equity.size else None,
                "max": float(equity.max()) if equity.size else None,
            },
            "curves": result_curves(self.index, equity, self.close, self.costs.initial_capital),
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }


def run_backtest(
    config: BacktestConfig,
    *,
    data_dir: Path,
    models_dir: Path,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BacktestResult:
    """Backtest ``config`` with data from ``data_dir`` and the model from ``models_dir``."""
    token = cancel or CancelToken()
    report = progress or (lambda _p: None)
    began = time.perf_counter()
    strategy, symbol, timeframe = config.strategy, config.resolved_symbol, config.resolved_timeframe

    report(Progress(percentage=0.0, current_step="loading model", steps_total=4))
    if config.model_path is not None:
        path = model_path_within(models_dir, config.model_path)
    else:
        path = resolve_model_path(models_dir, strategy.name, timeframe)
    model = load_model(path)
    token.raise_if_cancelled()

    report(Progress(percentage=10.0, current_step="loading data", steps_completed=1, steps_total=4))
    ohlcv = load_ohlcv(data_dir, symbol, timeframe, config.start_date, config.end_date)
    if ohlcv.empty:
        raise ValidationError(
            f"no {symbol} {timeframe} bars between {config.start_date} and {config.end_date}",
            details={"symbol": symbol, "timeframe": timeframe},
        )
    loaded = time.perf_counter()
    token.raise_if_cancelled()

    def phase(name: str, percentage: float, step: int) -> None:
        token.raise_if_cancelled()
        report(
            Progress(
                percentage=percentage,
                current_step=name,
                steps_completed=step,
                steps_total=4,
                items_total=len(ohlcv),
            )
        )

    result = backtest_frame(strategy, ohlcv, model, config.costs(), timeframe=timeframe, on_phase=phase)
    result.symbol = symbol
    result.timings["loading"] = loaded - began
    result.timings["total"] = time.perf_counter() - began
    report(
        Progress(
            percentage=100.0,
            current_step="done",
            steps_completed=4,
            steps_total=4,
            items_processed=len(ohlcv),
            items_total=len(ohlcv),
            context={"trades": len(result.simulation.trades)},
        )
    )
    log.info("backtest_done", strategy=strategy.name, bars=len(ohlcv), trades=len(result.simulation.trades))
    return result


def backtest_frame(
    strategy: StrategyConfig,
    ohlcv: pd.DataFrame,
    model: LoadedModel,
    costs: Costs,
    *,
    timeframe: str | None = None,
    on_phase: Any = None,
) -> BacktestResult:
    """The pure computation over an OHLCV frame already in memory (what the benchmark times)."""
    notify = on_phase or (lambda *_: None)
    timeframe = timeframe or strategy.training_data.timeframe
    names = feature_names(strategy)
    if names != model.feature_names:
        raise ValidationError(
            "the strategy's features differ from the model's; retrain the model for this strategy",
            details={"strategy_features": names, "model_features": model.feature_names},
        )
    timings: dict[str, float] = {}

    notify("features", 20.0, 1)
    t0 = time.perf_counter()
    frame = build_features(strategy, ohlcv)[names]
    normalizer = Normalizer.from_dict(model.metadata["normalization"])
    matrix = np.asarray(normalizer.transform(frame), dtype=np.float32)
    valid = np.isfinite(matrix).all(axis=1)
    matrix[~valid] = 0.0
    t1 = time.perf_counter()
    timings["features"] = t1 - t0

    notify("inference", 50.0, 2)
    probabilities = predict_proba(model.network, matrix)
    t2 = time.perf_counter()
    timings["inference"] = t2 - t1

    notify("simulation", 70.0, 3)
    orders = decide(probabilities, valid, strategy.decisions)
    open_, close = ohlcv["open"].to_numpy(dtype=np.float64), ohlcv["close"].to_numpy(dtype=np.float64)
    simulation = simulate(orders, open_, close, ohlcv.index, costs)
    t3 = time.perf_counter()
    timings["simulation"] = t3 - t2

    equity = pd.Series(simulation.equity, index=ohlcv.index)
    metrics = dict(performance_metrics(equity, periods_per_year(ohlcv.index, timeframe)))
    stats = trade_statistics(simulation.trades)
    timings["metrics"] = time.perf_counter() - t3

    counts = np.bincount(
        signals(probabilities, valid, strategy.decisions.confidence_threshold), minlength=NUM_CLASSES
    )
    return BacktestResult(
        strategy=strategy.name,
        symbol=strategy.training_data.symbol,
        timeframe=timeframe,
        model_path=str(model.path),
        costs=costs,
        index=ohlcv.index,
        close=close,
        probabilities=probabilities,
        simulation=simulation,
        metrics=metrics,
        trade_stats=stats,
        signal_counts={name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)},
        model=model.provenance(),
        timings=timings,
    )
