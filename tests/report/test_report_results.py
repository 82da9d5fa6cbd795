"""Reading stored results for the charts: this version's shape, older shapes, and anything at all."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from results_factory import (
    backtest_result,
    older_backtest_result,
    older_training_result,
    training_result,
)

from ktrdr.report.results import (
    backtest_curves,
    backtest_trades,
    confusion_matrix,
    result_rows,
    training_history,
    wiped_out_line,
)


def test_a_backtest_of_this_version_has_every_curve_on_one_axis() -> None:
    result = backtest_result(points=300)
    curves = backtest_curves(result)
    assert curves is not None and not curves.legacy
    assert len(curves.timestamps) == len(curves.equity) == len(curves.close or []) == 300
    assert curves.buy_and_hold is not None and curves.bars == 300
    assert curves.utc[0] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert max(curves.drawdown) == result["metrics"]["max_drawdown"]
    trades = backtest_trades(result)
    assert [t.side for t in trades[:2]] == ["long", "short"] and len(trades) == 12


def test_an_older_backtest_still_gives_its_equity_and_drawdown() -> None:
    curves = backtest_curves(older_backtest_result())
    assert curves is not None and curves.legacy
    assert curves.buy_and_hold is None and curves.close is None
    assert len(curves.equity) == 50 and curves.bars == 600
    # The drawdown is computed from the sample: 0 at the peak, deepest at the trough.
    peak = curves.equity.index(max(curves.equity))
    assert curves.drawdown[peak] == 0.0
    assert max(curves.drawdown) == 1 - min(curves.equity[peak:]) / max(curves.equity)
    assert wiped_out_line(older_backtest_result()) is None


def test_broken_curves_fall_back_to_what_is_left() -> None:
    result = backtest_result(points=50)
    result["curves"]["close"] = result["curves"]["close"][:-1]  # one short: the axis does not hold
    assert backtest_curves(result) is None  # and this result has no older sample to fall back to
    result["equity_curve"]["sample"] = [{"timestamp": "2024-01-01T00:00:00+00:00", "equity": 1.0}]
    fallback = backtest_curves(result)
    assert fallback is not None and fallback.legacy and fallback.equity == [1.0]
    unordered = backtest_result(points=5)
    unordered["curves"]["timestamps"].reverse()
    assert backtest_curves(unordered) is None
    missing_drawdown = backtest_result(points=5)
    del missing_drawdown["curves"]["drawdown"]
    recomputed = backtest_curves(missing_drawdown)
    assert recomputed is not None and recomputed.drawdown == backtest_result(points=5)["curves"]["drawdown"]


def test_a_training_of_this_version_has_its_history_and_confusion_matrix() -> None:
    result = training_result(epochs=30, best=21)
    history = training_history(result)
    assert history is not None and history.epoch == list(range(1, 31))
    assert confusion_matrix(result) == [[106, 122, 36], [38, 615, 188], [22, 181, 487]]
    older = older_training_result()
    assert training_history(older) is None and confusion_matrix(older) is None
    for curve in ("epoch", "val_loss"):
        broken = training_result(epochs=6, best=3)
        broken["history"][curve].pop()  # one short: the epochs and the curve no longer line up
        assert training_history(broken) is None


def test_a_confusion_matrix_must_be_three_by_three_counts() -> None:
    for bad in ([[1, 2], [3, 4]], [[1, 2, 3]] * 2 + [[1, 2]], [[1, -2, 3]] * 3, [[1.5, 2, 3]] * 3, "x"):
        assert confusion_matrix({"test_metrics": {"confusion_matrix": bad}}) is None


def test_result_rows_put_the_headline_metrics_first() -> None:
    rows = result_rows(
        {"metrics": {"win_rate": 0.5, "sharpe_ratio": 1.2}, "buy_and_hold_return": 0.1, "bars": 3}
    )
    assert [name for name, _ in rows] == ["sharpe_ratio", "win_rate", "buy_and_hold_return", "bars"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
KEYS = ["curves", "equity_curve", "trades", "history", "test_metrics", "bars", "wiped_out"]


@st.composite
def damaged_results(draw: st.DrawFn) -> dict[str, Any]:
    """A real result with a few of its sections (or their fields) replaced by arbitrary JSON."""
    result: dict[str, Any] = draw(
        st.sampled_from([backtest_result(points=20, trades=3), training_result(5, 2)])
    )
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        section = result.get(key)
        if isinstance(section, dict) and section and draw(st.booleans()):
            field = draw(st.sampled_from(sorted(section)))
            section[field] = draw(json_values)
        else:
            result[key] = draw(json_values)
    return result


@settings(max_examples=200, deadline=None)
@given(st.one_of(damaged_results(), st.dictionaries(st.sampled_from(KEYS), json_values)))
def test_any_stored_result_reads_without_raising(result: dict[str, Any]) -> None:
    curves = backtest_curves(result)
    if curves is not None:
        assert len(curves.equity) == len(curves.timestamps) == len(curves.drawdown) >= 1
    backtest_trades(result)
    training_history(result)
    confusion_matrix(result)
    result_rows(result)
