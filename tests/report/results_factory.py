"""Stored results for the report tests, made in plain Python (no numpy: they also serve the lean run).

``backtest_operation`` has the shape a backtest stores today (curves on one time axis, trades,
model and strategy provenance); ``older_backtest_operation`` the shape stored before the curves
existed (an evenly spaced equity sample only); the training ones likewise with and without the
per-epoch history and the confusion matrix. The equity rises to a peak at 30 % of the run, falls
to its trough at 70 % and recovers a little, so a chart of it has a known shape.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import strategies as st

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
PEAK_AT, TROUGH_AT = 0.3, 0.7
# The traces the report draws for these results, in order.
BACKTEST_TRACES = [
    "strategy",
    "buy & hold (no costs)",
    "drawdown",
    "close",
    "long entry",
    "short entry",
    "exit",
]
TRAINING_TRACES = ["train loss", "validation loss", "train accuracy", "validation accuracy"]


def equity_at(x: float) -> float:
    """The test curve at fraction ``x`` of the run: 100k, up to 130k, down to 85k, up to 95k."""
    if x <= PEAK_AT:
        return 100_000 + 30_000 * x / PEAK_AT
    if x <= TROUGH_AT:
        return 130_000 - 45_000 * (x - PEAK_AT) / (TROUGH_AT - PEAK_AT)
    return 85_000 + 10_000 * (x - TROUGH_AT) / (1 - TROUGH_AT)


def backtest_result(points: int = 600, trades: int = 12) -> dict[str, Any]:
    times = [START + dt.timedelta(hours=i) for i in range(points)]
    equity = [equity_at(i / (points - 1)) for i in range(points)]
    close = [1.1 + 0.05 * math.sin(i / 40) for i in range(points)]
    peak, drawdown = 0.0, []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(1 - value / peak)
    stored_trades = []
    spacing = (points - 1) // max(trades, 1)
    for n in range(trades):
        entry = n * spacing
        exit_ = entry + max(1, spacing // 2)
        side = "long" if n % 2 == 0 else "short"
        stored_trades.append(
            {
                "trade_id": n,
                "side": side,
                "entry_bar": entry,
                "exit_bar": exit_,
                "entry_time": times[entry].isoformat(),
                "exit_time": times[exit_].isoformat(),
                "entry_price": close[entry],
                "exit_price": close[exit_],
                "quantity": 90_000.0,
                "gross_pnl": 100.0 * (n - 5),
                "commission": 2.0,
                "slippage": 1.0,
                "net_pnl": 100.0 * (n - 5) - 3.0,
                "return_pct": 0.1 * (n - 5),
                "bars_held": exit_ - entry,
                "exit_reason": "signal",
            }
        )
    return {
        "strategy": "rsi_macd_trend",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "model_path": "/models/rsi_macd_trend/1h_v3",
        "model": {
            "path": "/models/rsi_macd_trend/1h_v3",
            "version": 3,
            "created_at": "2024-05-01T10:00:00+00:00",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "data_start": "2020-01-01T00:00:00+00:00",
            "data_end": "2023-12-31T23:00:00+00:00",
            "test_start": "2023-06-01T00:00:00+00:00",
        },
        "strategy_yaml_sha256": "ab" * 32,
        "start": times[0].isoformat(),
        "end": times[-1].isoformat(),
        "bars": points,
        "wiped_out": False,
        "wiped_out_bar": None,
        "wiped_out_at": None,
        "config": {
            "initial_capital": 100_000.0,
            "commission": 0.001,
            "slippage": 0.0005,
            "position_fraction": 1.0,
        },
        "metrics": {
            "total_return": equity[-1] / equity[0] - 1,
            "sharpe_ratio": -0.4,
            "max_drawdown": max(drawdown),
            "annualized_return": -0.3,
        },
        "buy_and_hold_return": close[-1] / close[0] - 1,
        "trade_statistics": {"total_trades": trades, "win_rate": 0.5},
        "trades_total": trades,
        "trades_truncated": False,
        "trades": stored_trades,
        "equity_curve": {"points": points, "initial": equity[0], "final": equity[-1]},
        "curves": {
            "bars": points,
            "points": points,
            "timestamps": [t.isoformat() for t in times],
            "equity": equity,
            "buy_and_hold": [100_000 * c / close[0] for c in close],
            "drawdown": drawdown,
            "close": close,
        },
    }


def older_backtest_result() -> dict[str, Any]:
    """As stored before the curves: metrics, trades and 50 evenly spaced equity points."""
    result = backtest_result()
    curves = result.pop("curves")
    for key in (
        "model",
        "strategy_yaml_sha256",
        "buy_and_hold_return",
        "wiped_out",
        "wiped_out_bar",
        "wiped_out_at",
    ):
        result.pop(key)
    picks = range(0, len(curves["equity"]), 12)
    result["equity_curve"]["sample"] = [
        {"timestamp": curves["timestamps"][i], "equity": curves["equity"][i]} for i in picks
    ]
    return result


def training_result(epochs: int = 30, best: int = 21) -> dict[str, Any]:
    def metrics(accuracy: float, matrix: list[list[int]] | None) -> dict[str, Any]:
        block = {"samples": 1000, "loss": 0.8, "accuracy": accuracy, "baseline_accuracy": 0.45}
        return block | ({"balanced_accuracy": 0.6, "confusion_matrix": matrix} if matrix else {})

    return {
        "model_path": "/models/rsi_macd_trend/1h_v3",
        "strategy": "rsi_macd_trend",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "version": 3,
        "epochs_run": epochs,
        "best_epoch": best,
        "stopped_early": True,
        "device": "cpu",
        "train_metrics": metrics(0.7, [[300, 20, 10], [30, 300, 30], [10, 20, 280]]),
        "validation_metrics": metrics(0.68, [[100, 10, 5], [10, 100, 10], [5, 10, 90]]),
        "test_metrics": metrics(0.66, [[106, 122, 36], [38, 615, 188], [22, 181, 487]]),
        "samples": {"train": 1000, "validation": 300, "test": 1795},
        "feature_names": ["rsi_low", "rsi_high"],
        "duration_seconds": 2.5,
        "data_start": "2020-01-01T00:00:00+00:00",
        "data_end": "2023-12-31T23:00:00+00:00",
        "test_start": "2023-06-01T00:00:00+00:00",
        "strategy_yaml_sha256": "cd" * 32,
        "history": {
            "epochs": epochs,
            "points": epochs,
            "epoch": list(range(1, epochs + 1)),
            "train_loss": [1.0 / (1 + 0.2 * e) for e in range(epochs)],
            "val_loss": [0.8 + ((e + 1 - best) / epochs) ** 2 for e in range(epochs)],
            "train_accuracy": [0.5 + 0.2 * e / epochs for e in range(epochs)],
            "val_accuracy": [0.5 + 0.15 * e / epochs for e in range(epochs)],
        },
    }


def older_training_result() -> dict[str, Any]:
    """As stored before the history and the confusion matrices."""
    result = training_result()
    result.pop("history")
    for split in ("train", "validation", "test"):
        result[f"{split}_metrics"].pop("confusion_matrix")
    return result


def operation(kind: str, result: dict[str, Any] | None, status: str = "completed") -> dict[str, Any]:
    return {
        "operation_id": f"op_{kind}",
        "operation_type": kind,
        "status": status,
        "created_at": "2024-06-01T10:00:00+00:00",
        "completed_at": "2024-06-01T10:01:00+00:00",
        "worker_id": f"{kind}-local-5003",
        "params": {},
        "result": result,
    }


# --- damaged results, for the property tests of every renderer ------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@st.composite
def damaged_operations(draw: st.DrawFn) -> dict[str, Any]:
    """A stored operation whose result has sections, fields or single points replaced: by anything
    JSON holds (huge numbers, NaN and infinities included), or by a neighbour's value (equal
    timestamps, a flat line)."""
    kind = draw(st.sampled_from(["backtesting", "training"]))
    result = backtest_result(points=30, trades=3) if kind == "backtesting" else training_result(6, 3)
    for key in draw(st.lists(st.sampled_from(sorted(result)), max_size=4)):
        section = result[key]
        if isinstance(section, dict) and section and draw(st.booleans()):
            name = draw(st.sampled_from(sorted(section)))
            values = section[name]
            if isinstance(values, list) and values and draw(st.booleans()):
                at = draw(st.integers(min_value=1, max_value=len(values))) - 1
                values[at] = values[at - 1] if at and draw(st.booleans()) else draw(json_values)
            else:
                section[name] = draw(json_values)
        else:
            result[key] = draw(json_values)
    return operation(kind, result, status=draw(st.sampled_from(["completed", "failed"])))
