"""performance_metrics and trade_statistics: hand-computed cases, edge cases, invariants."""

from __future__ import annotations

import json
import math

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.backtesting.metrics import (  # noqa: E402
    nominal_periods_per_year,
    performance_metrics,
    periods_per_year,
    trade_statistics,
)
from ktrdr.errors import ValidationError  # noqa: E402


def test_hand_computed_curve() -> None:
    # returns: +10%, -10%, +20%
    m = performance_metrics(pd.Series([100.0, 110.0, 99.0, 118.8]), periods_per_year=12)
    r = [0.1, -0.1, 0.2]
    mean = sum(r) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    downside = math.sqrt((0.1**2) / 3)
    assert m["total_return"] == pytest.approx(0.188)
    assert m["annualized_return"] == pytest.approx(1.188 ** (12 / 3) - 1)
    assert m["volatility"] == pytest.approx(std * math.sqrt(12))
    assert m["sharpe_ratio"] == pytest.approx(mean / std * math.sqrt(12))
    assert m["sortino_ratio"] == pytest.approx(mean / downside * math.sqrt(12))
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["calmar_ratio"] == pytest.approx((1.188**4 - 1) / 0.1)


def test_drawdown_is_measured_from_the_running_peak() -> None:
    m = performance_metrics(pd.Series([100.0, 120.0, 90.0, 130.0, 104.0]), periods_per_year=252)
    assert m["max_drawdown"] == pytest.approx(0.25)  # 120 -> 90


def test_one_bar_has_no_undefined_division() -> None:
    m = performance_metrics(pd.Series([100.0]), periods_per_year=252)
    assert m["total_return"] == 0.0
    assert m["max_drawdown"] == 0.0
    assert m["annualized_return"] is None
    assert m["volatility"] is None and m["sharpe_ratio"] is None
    assert m["sortino_ratio"] is None and m["calmar_ratio"] is None


def test_flat_equity() -> None:
    m = performance_metrics(pd.Series([50.0] * 10), periods_per_year=252)
    assert m["total_return"] == 0.0 and m["annualized_return"] == 0.0
    assert m["volatility"] == 0.0
    assert m["sharpe_ratio"] is None  # 0 / 0
    assert m["sortino_ratio"] is None  # no downside
    assert m["max_drawdown"] == 0.0 and m["calmar_ratio"] is None
    json.dumps(m, allow_nan=False)


def test_ruin_gives_minus_one_annualized() -> None:
    m = performance_metrics(pd.Series([100.0, 50.0, 0.0]), periods_per_year=252)
    assert m["annualized_return"] == -1.0
    assert m["max_drawdown"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("equity", "ppy"), [([], 252), ([0.0, 1.0], 252), ([1.0, float("nan")], 252), ([1.0, 2.0], 0)]
)
def test_invalid_input_is_refused(equity: list[float], ppy: float) -> None:
    with pytest.raises(ValidationError):
        performance_metrics(pd.Series(equity, dtype=float), periods_per_year=ppy)


curves = st.lists(st.floats(min_value=1.0, max_value=1e6, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(curves, st.floats(min_value=1e-3, max_value=1e3))
def test_scaling_equity_leaves_every_ratio_unchanged(values: list[float], scale: float) -> None:
    base = performance_metrics(pd.Series(values), periods_per_year=252)
    scaled = performance_metrics(pd.Series(values) * scale, periods_per_year=252)
    for key in ("total_return", "annualized_return", "volatility", "sharpe_ratio", "max_drawdown"):
        if base[key] is None:
            assert scaled[key] is None
        else:
            assert scaled[key] == pytest.approx(base[key], rel=1e-6, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=60))
def test_monotone_rising_equity_has_no_drawdown(steps: list[float]) -> None:
    equity = pd.Series(np.cumprod([1.0, *[1 + s for s in steps]]) * 100)
    m = performance_metrics(equity, periods_per_year=52)
    assert m["max_drawdown"] == 0.0
    assert m["calmar_ratio"] is None
    assert m["total_return"] >= 0.0


@settings(max_examples=60, deadline=None)
@given(curves)
def test_results_are_json_safe_and_bounded(values: list[float]) -> None:
    m = performance_metrics(pd.Series(values), periods_per_year=252)
    json.dumps(m, allow_nan=False)
    assert 0.0 <= m["max_drawdown"] < 1.0
    if m["sortino_ratio"] is not None and m["sharpe_ratio"] is not None:
        assert np.sign(m["sortino_ratio"]) == np.sign(m["sharpe_ratio"])


def test_trade_statistics() -> None:
    trades = [{"net_pnl": 30.0, "bars_held": 2}, {"net_pnl": -10.0, "bars_held": 4}, {"net_pnl": 20.0}]
    s = trade_statistics(trades)
    assert s["total_trades"] == 3
    assert s["winning_trades"] == 2 and s["losing_trades"] == 1
    assert s["win_rate"] == pytest.approx(2 / 3)
    assert s["profit_factor"] == pytest.approx(5.0)
    assert s["total_net_pnl"] == pytest.approx(40.0)
    assert s["avg_win"] == pytest.approx(25.0) and s["avg_loss"] == pytest.approx(-10.0)
    assert s["largest_win"] == 30.0 and s["largest_loss"] == -10.0
    assert s["avg_bars_held"] == pytest.approx(3.0)


def test_trade_statistics_without_trades_or_losses() -> None:
    empty = trade_statistics([])
    assert empty["total_trades"] == 0 and empty["win_rate"] is None and empty["profit_factor"] is None
    assert trade_statistics([{"net_pnl": 5.0}])["profit_factor"] is None


def test_periods_per_year_follows_the_data_calendar() -> None:
    daily_24_7 = pd.date_range("2024-01-01", periods=366, freq="D", tz="UTC")
    assert periods_per_year(daily_24_7, "1d") == pytest.approx(365.25, rel=1e-3)
    business = pd.bdate_range("2023-01-02", "2024-01-02", tz="UTC")
    assert periods_per_year(business, "1d") == pytest.approx(261, rel=0.01)
    assert periods_per_year(business[:1], "1d") == 252.0
    assert nominal_periods_per_year("1h") == pytest.approx(8766.0)
    with pytest.raises(ValidationError):
        nominal_periods_per_year("7x")
