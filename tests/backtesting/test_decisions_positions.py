"""Decision rules and the position manager: orders, fills, costs, trades, equity, no look-ahead."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.backtesting.decisions import Action, Orders, decide, signals  # noqa: E402
from ktrdr.backtesting.positions import Costs, simulate  # noqa: E402
from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.strategy.schema import Decisions  # noqa: E402

B = [0.8, 0.1, 0.1]
H = [0.1, 0.8, 0.1]
S = [0.1, 0.1, 0.8]
UNSURE_BUY = [0.45, 0.3, 0.25]


def _orders(rows: list[list[float]], **rules) -> list[tuple[int, Action]]:
    probs = np.array(rows)
    orders = decide(probs, np.ones(len(rows), dtype=bool), Decisions(**rules))
    return [(int(b), Action(a)) for b, a in zip(orders.decision_bars, orders.actions, strict=True)]


def test_signals_need_confidence_and_known_features() -> None:
    probs = np.array([B, UNSURE_BUY, S, B])
    valid = np.array([True, True, True, False])
    assert list(signals(probs, valid, 0.5)) == [0, 1, 2, 1]


def test_long_only_by_default() -> None:
    orders = _orders([S, B, B, H, S, S], min_signal_separation=0)
    assert orders == [(1, Action.OPEN_LONG), (4, Action.CLOSE_LONG)]


def test_shorts_from_flat_when_allowed() -> None:
    orders = _orders([S, B, B, S, S], min_signal_separation=0, allow_short=True)
    assert orders == [
        (0, Action.OPEN_SHORT),
        (1, Action.CLOSE_SHORT),
        (2, Action.OPEN_LONG),
        (3, Action.CLOSE_LONG),
        (4, Action.OPEN_SHORT),
    ]


def test_minimum_separation_in_bars() -> None:
    orders = _orders([B, S, S, S, B, B], min_signal_separation=3)
    assert orders == [(0, Action.OPEN_LONG), (3, Action.CLOSE_LONG)]


def test_confidence_threshold() -> None:
    assert _orders([UNSURE_BUY, UNSURE_BUY], min_signal_separation=0) == []
    assert _orders([UNSURE_BUY], min_signal_separation=0, confidence_threshold=0.4) == [(0, Action.OPEN_LONG)]


def _flat_prices(n: int, price: float = 100.0):
    return np.full(n, price), np.full(n, price)


def test_fill_at_next_open_with_costs() -> None:
    open_ = np.array([100.0, 101.0, 102.0, 110.0, 111.0])
    close = np.array([100.5, 101.5, 105.0, 110.5, 112.0])
    orders = Orders(np.array([0, 2]), np.array([Action.OPEN_LONG, Action.CLOSE_LONG], dtype=np.int8))
    costs = Costs(initial_capital=10_000, commission=0.001, slippage=0.01, position_fraction=0.5)
    sim = simulate(orders, open_, close, list(range(5)), costs)

    entry = 101.0 * 1.01
    qty = 5000 / (entry * 1.001)
    exit_ = 110.0 * 0.99
    (trade,) = sim.trades
    assert trade.entry_bar == 1 and trade.exit_bar == 3 and trade.side == "long"
    assert trade.entry_price == pytest.approx(entry) and trade.exit_price == pytest.approx(exit_)
    assert trade.quantity == pytest.approx(qty)
    assert trade.gross_pnl == pytest.approx((exit_ - entry) * qty)
    assert trade.commission == pytest.approx(qty * entry * 0.001 + qty * exit_ * 0.001)
    assert trade.net_pnl == pytest.approx(trade.gross_pnl - trade.commission)
    assert trade.slippage == pytest.approx(qty * 101.0 * 0.01 + qty * 110.0 * 0.01)
    assert trade.bars_held == 2 and trade.exit_reason == "signal"

    cash_in_trade = 10_000 - qty * entry * 1.001
    assert sim.equity[0] == 10_000
    assert sim.equity[1] == pytest.approx(cash_in_trade + qty * 101.5)
    assert sim.equity[2] == pytest.approx(cash_in_trade + qty * 105.0)
    assert sim.equity[3] == pytest.approx(10_000 + trade.net_pnl)
    assert sim.equity[4] == pytest.approx(10_000 + trade.net_pnl)
    assert list(sim.position[[0, 3]]) == [0.0, 0.0] and sim.position[1] == pytest.approx(qty)


def test_short_profits_when_price_falls_and_is_closed_at_the_end() -> None:
    open_ = np.array([100.0, 100.0, 90.0, 80.0])
    close = np.array([100.0, 95.0, 85.0, 80.0])
    orders = Orders(np.array([0]), np.array([Action.OPEN_SHORT], dtype=np.int8))
    sim = simulate(orders, open_, close, ["t0", "t1", "t2", "t3"], Costs(1000, 0.0, 0.0, 1.0))
    (trade,) = sim.trades
    assert trade.side == "short" and trade.exit_reason == "end_of_data"
    assert trade.quantity == pytest.approx(10.0)
    assert trade.net_pnl == pytest.approx(200.0)
    assert trade.entry_time == "t1" and trade.exit_time == "t3"
    assert sim.equity[1] == pytest.approx(1050.0)
    assert sim.equity[-1] == pytest.approx(1200.0)


def test_an_order_on_the_last_bar_is_never_filled() -> None:
    open_, close = _flat_prices(3)
    orders = Orders(np.array([2]), np.array([Action.OPEN_LONG], dtype=np.int8))
    sim = simulate(orders, open_, close, list(range(3)), Costs())
    assert sim.trades == [] and sim.fills == 0 and list(sim.equity) == [100_000.0] * 3


def test_costs_are_checked() -> None:
    with pytest.raises(ValidationError):
        Costs(initial_capital=0)
    with pytest.raises(ValidationError):
        Costs(position_fraction=1.5)


def test_without_costs_round_trip_is_exact() -> None:
    open_ = np.array([10.0, 10.0, 12.0, 12.0])
    orders = Orders(np.array([0, 1]), np.array([Action.OPEN_LONG, Action.CLOSE_LONG], dtype=np.int8))
    sim = simulate(orders, open_, open_, list(range(4)), Costs(1000, 0.0, 0.0, 1.0))
    assert sim.equity[-1] == pytest.approx(1200.0)


probability_rows = st.lists(
    st.tuples(*[st.floats(min_value=0.0, max_value=1.0)] * 3).filter(lambda t: sum(t) > 0),
    min_size=2,
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(
    probability_rows,
    st.integers(min_value=1, max_value=59),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
    st.data(),
)
def test_no_future_bar_changes_an_earlier_decision_or_fill(rows, cut, separation, allow_short, data) -> None:
    n = len(rows)
    cut = min(cut, n - 1)
    probs = np.array(rows) / np.array(rows).sum(axis=1, keepdims=True)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    open_ = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    close = open_ * np.exp(rng.normal(0, 0.01, n))
    rules = Decisions(confidence_threshold=0.4, min_signal_separation=separation, allow_short=allow_short)
    valid = np.ones(n, dtype=bool)

    # Replace everything after `cut` with arbitrary other bars.
    other = np.array(rows[::-1]) + 0.5
    other = other / other.sum(axis=1, keepdims=True)
    probs_b = np.vstack([probs[: cut + 1], other[: n - cut - 1]])
    open_b = np.concatenate([open_[: cut + 1], open_[cut + 1 :] * 1.7])
    close_b = np.concatenate([close[: cut + 1], close[cut + 1 :] * 0.4])

    a = decide(probs, valid, rules)
    b = decide(probs_b, valid, rules)
    keep_a, keep_b = a.decision_bars <= cut, b.decision_bars <= cut
    assert list(a.decision_bars[keep_a]) == list(b.decision_bars[keep_b])
    assert list(a.actions[keep_a]) == list(b.actions[keep_b])

    costs = Costs(10_000, 0.001, 0.0005, 0.5)
    sim_a = simulate(a, open_, close, list(range(n)), costs)
    sim_b = simulate(b, open_b, close_b, list(range(n)), costs)
    # Equity up to the close of `cut` depends only on bars <= cut (the last bar of a run is
    # where an open position is settled, so it is left out when cut is the last bar).
    upto = cut if cut < n - 1 else cut - 1
    np.testing.assert_allclose(sim_a.equity[: upto + 1], sim_b.equity[: upto + 1])
