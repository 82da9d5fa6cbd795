"""The position manager's ledger: invariants that hold for every run, and a reference loop.

``reference`` re-implements docs/models.md's position-manager rules as a plain bar-by-bar loop that
shares no code with :mod:`ktrdr.backtesting.positions`; ``simulate`` must agree with it fill by
fill. ``ledger_violations`` states the invariants every run keeps, and is checked both on random
runs (prices from 0.01 to 10,000, costs, orders, short squeezes) and on deliberately broken
ledgers, which it must reject.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from hypothesis import event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.backtesting.decisions import Action, Orders, decide  # noqa: E402
from ktrdr.backtesting.positions import Costs, Simulation, simulate  # noqa: E402
from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.neural.classes import BUY, HOLD, SELL  # noqa: E402
from ktrdr.strategy.schema import Decisions  # noqa: E402

OPENS = {Action.OPEN_LONG: "long", Action.OPEN_SHORT: "short"}
CLOSES = {"long": Action.CLOSE_LONG, "short": Action.CLOSE_SHORT}


# ----------------------------------------------------------------------------- the reference


def reference(orders: Orders, open_: Any, close: Any, costs: Costs) -> dict[str, Any]:
    """docs/models.md's rules, bar by bar: fills, trades, and cash/position/equity at each close."""
    capital, commission, slippage, fraction = (
        costs.initial_capital,
        costs.commission,
        costs.slippage,
        costs.position_fraction,
    )
    orders_by_fill_bar = {
        int(bar) + 1: Action(int(action))
        for bar, action in zip(orders.decision_bars, orders.actions, strict=True)
    }

    def buy(quantity: float, price: float) -> tuple[float, float, float]:
        """(fill price, commission, cash change) of buying ``quantity`` at market ``price``."""
        fill = price * (1 + slippage)
        fee = commission * quantity * fill
        return fill, fee, -(quantity * fill) - fee

    def sell(quantity: float, price: float) -> tuple[float, float, float]:
        fill = price * (1 - slippage)
        fee = commission * quantity * fill
        return fill, fee, quantity * fill - fee

    cash = capital
    held: dict[str, Any] | None = None
    trades: list[dict[str, Any]] = []
    curves: dict[str, list[float]] = {"cash": [], "position": [], "equity": []}
    fills = 0
    wiped: int | None = None

    def exit_at(price: float, bar: int, reason: str) -> None:
        nonlocal cash, held
        assert held is not None
        long = held["side"] == "long"
        fill, fee, change = (sell if long else buy)(held["quantity"], price)
        cash += change
        gross = (fill - held["price"]) * held["quantity"]
        if not long:
            gross = -gross
        trades.append(
            {
                "side": held["side"],
                "entry_bar": held["bar"],
                "exit_bar": bar,
                "entry_price": held["price"],
                "exit_price": fill,
                "quantity": held["quantity"],
                "gross_pnl": gross,
                "commission": held["fee"] + fee,
                "slippage": (held["market"] + price) * held["quantity"] * slippage,
                "net_pnl": gross - held["fee"] - fee,
                "exit_reason": reason,
            }
        )
        held = None

    n = len(close)
    for t in range(n):
        action = orders_by_fill_bar.get(t) if wiped is None else None
        if action in OPENS:
            side = OPENS[action]
            market = float(open_[t])
            unit_fill = market * (1 + slippage) if side == "long" else market * (1 - slippage)
            quantity = fraction * cash / (unit_fill * (1 + commission))
            fill, fee, change = (buy if side == "long" else sell)(quantity, market)
            cash += change
            held = {"side": side, "quantity": quantity, "bar": t, "price": fill, "fee": fee, "market": market}
            fills += 1
        elif action is not None:
            exit_at(float(open_[t]), t, "signal")
            fills += 1

        if wiped is None and cash + signed(held) * float(close[t]) <= 0:
            wiped = t
            if held is not None:
                exit_at(float(close[t]), t, "wiped_out")
        elif t == n - 1 and held is not None:
            exit_at(float(close[t]), t, "end_of_data")
        curves["cash"].append(cash)
        curves["position"].append(signed(held))
        curves["equity"].append(cash + signed(held) * float(close[t]))
    if wiped is None and curves["equity"] and curves["equity"][-1] <= 0:
        wiped = n - 1
    return {"trades": trades, "fills": fills, "wiped_out_bar": wiped, **curves}


def signed(held: dict[str, Any] | None) -> float:
    if held is None:
        return 0.0
    return held["quantity"] if held["side"] == "long" else -held["quantity"]


# ----------------------------------------------------------------------------- the invariants


def money_scale(sim: Simulation, costs: Costs) -> float:
    """The size of the sums involved, for float tolerances: capital plus everything traded."""
    traded = sum(abs(t.quantity) * (abs(t.entry_price) + abs(t.exit_price)) for t in sim.trades)
    return costs.initial_capital + traded + float(np.abs(sim.equity).max(initial=0.0))


def ledger_violations(sim: Simulation, orders: Orders, close: Any, costs: Costs) -> list[str]:
    """Every way ``sim`` breaks the ledger's invariants (docs/models.md); empty when it keeps them."""
    n = len(close)
    wiped = sim.wiped_out_bar
    tolerance = 1e-9 * money_scale(sim, costs)
    problems: list[str] = []
    filled = {
        int(bar) + 1: Action(int(action))
        for bar, action in zip(orders.decision_bars, orders.actions, strict=True)
        if int(bar) + 1 < n and (wiped is None or int(bar) + 1 <= wiped)
    }

    at_or_below = np.flatnonzero(sim.equity <= 0)
    if sim.wiped_out_bar != (int(at_or_below[0]) if at_or_below.size else None):
        problems.append(f"wiped_out_bar {wiped} but equity first <= 0 at {at_or_below[:1]}")
    if sim.fills != len(filled):
        problems.append(f"{sim.fills} fills counted, {len(filled)} orders filled")

    opens = sorted(bar for bar, action in filled.items() if action in OPENS)
    if [t.entry_bar for t in sim.trades] != opens:
        problems.append(f"trades enter on bars {[t.entry_bar for t in sim.trades]}, opens filled on {opens}")

    expected_position = np.zeros(n)
    for trade in sim.trades:
        name = f"trade {trade.trade_id}"
        opener = filled.get(trade.entry_bar)
        if trade.side != OPENS.get(opener):  # type: ignore[arg-type]
            problems.append(f"{name} is {trade.side} but was opened by {opener}")
        if not (trade.quantity > 0 and math.isfinite(trade.quantity)):
            problems.append(f"{name} has quantity {trade.quantity}")
        if not (trade.commission >= 0 and trade.slippage >= 0):
            problems.append(f"{name} has commission {trade.commission} and slippage {trade.slippage}")
        if trade.entry_bar > 0 and not sim.equity[trade.entry_bar - 1] > 0:
            problems.append(f"{name} opened from equity {sim.equity[trade.entry_bar - 1]}")
        ends_right = {
            "signal": filled.get(trade.exit_bar) == CLOSES.get(trade.side),
            "end_of_data": trade.exit_bar == n - 1,
            "wiped_out": trade.exit_bar == wiped,
        }
        if not ends_right.get(trade.exit_reason, False):
            problems.append(f"{name} ends on bar {trade.exit_bar} for {trade.exit_reason!r}")
        sign = 1.0 if trade.side == "long" else -1.0
        expected_position[trade.entry_bar : trade.exit_bar] = sign * trade.quantity
    if not np.allclose(sim.position, expected_position, rtol=1e-12, atol=0.0):
        problems.append("the position curve is not the trades' signed quantities")

    if not np.allclose(sim.equity, sim.cash + sim.position * close, rtol=0.0, atol=tolerance):
        problems.append("equity is not cash + signed quantity x close at every bar")
    if n and not math.isclose(
        sum(t.net_pnl for t in sim.trades),
        float(sim.equity[-1]) - costs.initial_capital,
        rel_tol=0.0,
        abs_tol=tolerance,
    ):
        problems.append("the trades' net PnL does not add up to final equity - initial capital")
    if wiped is not None:
        if any(t.entry_bar > wiped or t.exit_bar > wiped for t in sim.trades):
            problems.append(f"a trade runs past the wiped-out bar {wiped}")
        if np.any(sim.equity[wiped:] != sim.equity[wiped]) or np.any(sim.position[wiped:] != 0):
            problems.append(f"the account moved after it was wiped out at bar {wiped}")
    return problems


def assert_agrees_with_reference(sim: Simulation, expected: dict[str, Any], costs: Costs) -> None:
    tolerance = 1e-9 * money_scale(sim, costs)
    assert sim.wiped_out_bar == expected["wiped_out_bar"]
    assert sim.fills == expected["fills"]
    assert len(sim.trades) == len(expected["trades"])
    for got, want in zip(sim.trades, expected["trades"], strict=True):
        for key, value in want.items():
            if isinstance(value, float):
                assert getattr(got, key) == pytest.approx(value, rel=1e-9, abs=tolerance), key
            else:
                assert getattr(got, key) == value, key
    for curve in ("cash", "position", "equity"):
        np.testing.assert_allclose(getattr(sim, curve), expected[curve], rtol=1e-9, atol=tolerance)


# ----------------------------------------------------------------------------- random runs


@st.composite
def markets(draw: st.DrawFn) -> tuple[Any, Any]:
    """Open and close prices at a scale from 0.01 to 10,000, with calm bars, jumps and squeezes."""
    n = draw(st.integers(min_value=1, max_value=50))
    scale = draw(st.floats(min_value=0.01, max_value=10_000.0))
    move = st.one_of(st.floats(-0.03, 0.03), st.floats(-1.0, 1.6))  # 1.6: a fivefold jump
    gaps = np.array(draw(st.lists(move, min_size=n, max_size=n)))
    inside = np.array(draw(st.lists(move, min_size=n, max_size=n)))
    log_open = np.clip(np.cumsum(gaps), -4.0, 4.0)
    open_ = scale * np.exp(log_open)
    close = scale * np.exp(np.clip(log_open + inside, -4.0, 4.0))
    return open_, close


costs_st = st.builds(
    Costs,
    initial_capital=st.floats(min_value=1.0, max_value=1e9),
    commission=st.one_of(st.just(0.0), st.floats(0.0, 0.05)),
    slippage=st.one_of(st.just(0.0), st.floats(0.0, 0.05)),
    position_fraction=st.one_of(st.just(1.0), st.floats(0.01, 1.0)),
)


@st.composite
def runs(draw: st.DrawFn) -> tuple[Any, Any, Any, Orders, Costs, Decisions]:
    """A market, per-bar signals turned into orders by the decision rules, and costs."""
    open_, close = draw(markets())
    n = open_.size
    signal = np.array(
        draw(st.lists(st.sampled_from([BUY, HOLD, SELL]), min_size=n, max_size=n)), dtype=np.int64
    )
    rules = Decisions(
        confidence_threshold=0.5,
        min_signal_separation=draw(st.integers(0, 3)),
        allow_short=draw(st.booleans()),
    )
    probabilities = np.full((n, 3), 0.05)
    probabilities[np.arange(n), signal] = 0.9
    orders = decide(probabilities, np.ones(n, dtype=bool), rules)
    return open_, close, signal, orders, draw(costs_st), rules


@st.composite
def squeezes(draw: st.DrawFn) -> tuple[Any, Any, Any, Orders, Costs, Decisions]:
    """A short opened early, then a price jump by 1.5x to 6x, then more signals (a buy-back and
    a new position the account may no longer afford)."""
    open_, close, signal, _, costs, _ = draw(runs())
    n = open_.size
    if n < 3:
        open_, close = np.full(4, open_[0]), np.full(4, close[0])
        signal = np.array([SELL, HOLD, BUY, BUY])
        n = 4
    signal = signal.copy()
    signal[0] = SELL
    jump_at = draw(st.integers(2, n - 1))
    factor = draw(st.floats(1.5, 6.0))
    open_, close = open_.copy(), close.copy()
    open_[jump_at:] *= factor
    close[jump_at - 1 :] *= factor if draw(st.booleans()) else 1.0
    rules = Decisions(confidence_threshold=0.5, min_signal_separation=0, allow_short=True)
    probabilities = np.full((n, 3), 0.05)
    probabilities[np.arange(n), signal] = 0.9
    return open_, close, signal, decide(probabilities, np.ones(n, dtype=bool), rules), costs, rules


any_run = st.one_of(runs(), squeezes())


@settings(max_examples=300, deadline=None)
@given(any_run)
def test_every_run_keeps_the_ledger_invariants(run) -> None:
    open_, close, _, orders, costs, _ = run
    sim = simulate(orders, open_, close, list(range(open_.size)), costs)
    event("not wiped out" if sim.wiped_out_bar is None else "wiped out")
    assert ledger_violations(sim, orders, close, costs) == []


@settings(max_examples=300, deadline=None)
@given(any_run)
def test_simulate_agrees_with_the_reference_loop_fill_by_fill(run) -> None:
    open_, close, _, orders, costs, _ = run
    sim = simulate(orders, open_, close, list(range(open_.size)), costs)
    assert_agrees_with_reference(sim, reference(orders, open_, close, costs), costs)


@settings(max_examples=200, deadline=None)
@given(any_run)
def test_a_buy_from_flat_opens_a_long_and_a_sell_a_short_when_shorts_are_allowed(run) -> None:
    open_, close, signal, orders, costs, rules = run
    sim = simulate(orders, open_, close, list(range(open_.size)), costs)
    for trade in sim.trades:
        decided = signal[trade.entry_bar - 1]  # the bar whose signal made the opening order
        assert trade.side == {BUY: "long", SELL: "short"}[int(decided)]
    if not rules.allow_short:
        assert all(t.side == "long" for t in sim.trades)
        assert sim.wiped_out_bar is None  # a long cannot lose more than it holds


def test_the_issues_squeeze_wipes_the_account_out_and_nothing_trades_after() -> None:
    # A short covered at 3x its entry leaves cash at -1000; the BUY that followed used to open a
    # "short" of -3.33 units with a +100 PnL while equity fell by 100.
    p = np.array([100.0, 100.0, 300.0, 300.0, 330.0, 330.0])
    orders = Orders(
        np.array([0, 1, 2, 3]),
        np.array([Action.OPEN_SHORT, Action.CLOSE_SHORT, Action.OPEN_LONG, Action.CLOSE_LONG], dtype=np.int8),
    )
    costs = Costs(1000.0, 0.0, 0.0, 1.0)
    sim = simulate(orders, p, p, list(range(6)), costs)
    assert list(sim.equity) == [1000.0, 1000.0, -1000.0, -1000.0, -1000.0, -1000.0]
    assert sim.wiped_out_bar == 2 and sim.fills == 2
    (trade,) = sim.trades
    assert (trade.side, trade.quantity, trade.net_pnl, trade.exit_reason) == (
        "short",
        10.0,
        -2000.0,
        "signal",
    )
    assert ledger_violations(sim, orders, p, costs) == []


def test_an_account_at_exactly_zero_is_wiped_out_too() -> None:
    p = np.array([100.0, 100.0, 200.0, 200.0, 150.0])
    orders = Orders(
        np.array([0, 1, 2, 3]),
        np.array([Action.OPEN_SHORT, Action.CLOSE_SHORT, Action.OPEN_LONG, Action.CLOSE_LONG], dtype=np.int8),
    )
    costs = Costs(1000.0, 0.0, 0.0, 1.0)
    sim = simulate(orders, p, p, list(range(5)), costs)
    assert list(sim.equity) == [1000.0, 1000.0, 0.0, 0.0, 0.0]
    assert sim.wiped_out_bar == 2 and len(sim.trades) == 1 and sim.fills == 2
    assert ledger_violations(sim, orders, p, costs) == []


def test_a_short_squeezed_while_open_is_closed_at_the_first_close_at_or_below_zero() -> None:
    open_ = np.array([100.0, 100.0, 150.0, 180.0, 90.0, 90.0])
    close = np.array([100.0, 120.0, 200.0, 210.0, 90.0, 90.0])
    orders = Orders(np.array([0, 4]), np.array([Action.OPEN_SHORT, Action.CLOSE_SHORT], dtype=np.int8))
    costs = Costs(1000.0, 0.001, 0.001, 1.0)
    sim = simulate(orders, open_, close, list(range(6)), costs)
    (trade,) = sim.trades
    # Short 10 units at 99.9, holding 1998 in cash: the account is at zero at 199.8, and bar 2
    # closes at 200. The squeeze peaks the bar after and the price falls back to 90; the account,
    # stopped out, never sees that.
    assert trade.exit_reason == "wiped_out" and trade.exit_bar == 2 and sim.wiped_out_bar == 2
    assert trade.exit_price == pytest.approx(200.0 * 1.001)
    assert sim.equity[2] < 0 and np.all(sim.equity[2:] == sim.equity[2]) and sim.fills == 1
    assert ledger_violations(sim, orders, close, costs) == []


def test_closing_costs_at_the_end_can_be_what_wipes_the_account_out() -> None:
    # Short 10.1 at 99 with 2000 cash: the account is worth 10.1 at the last close (197), and
    # buying back at 197 x 1.01 costs 19.9 more than that.
    open_ = np.array([100.0, 100.0, 100.0])
    close = np.array([100.0, 100.0, 197.0])
    orders = Orders(np.array([0]), np.array([Action.OPEN_SHORT], dtype=np.int8))
    costs = Costs(1000.0, 0.0, 0.01, 1.0)
    sim = simulate(orders, open_, close, list(range(3)), costs)
    (trade,) = sim.trades
    assert sim.cash[1] + sim.position[1] * close[2] == pytest.approx(10.1, abs=0.01)
    assert trade.exit_reason == "end_of_data" and sim.wiped_out_bar == 2 and sim.equity[-1] < 0
    assert ledger_violations(sim, orders, close, costs) == []


# ----------------------------------------------------------------------------- the checks can fail


def _wiped_run() -> tuple[Simulation, Orders, Any, Costs]:
    """A long, then a short squeezed until the account is wiped out, then orders never filled."""
    open_ = np.array([10.0, 10.0, 12.0, 12.0, 12.0, 30.0, 30.0, 30.0, 30.0])
    close = np.array([10.0, 11.0, 12.0, 12.0, 13.0, 30.0, 30.0, 30.0, 30.0])
    actions = [Action.OPEN_LONG, Action.CLOSE_LONG, Action.OPEN_SHORT, Action.CLOSE_SHORT, Action.OPEN_LONG]
    orders = Orders(np.array([0, 1, 2, 6, 7]), np.array(actions, dtype=np.int8))
    costs = Costs(1000.0, 0.001, 0.001, 1.0)
    sim = simulate(orders, open_, close, list(range(close.size)), costs)
    assert sim.wiped_out_bar == 5 and [t.side for t in sim.trades] == ["long", "short"]
    return sim, orders, close, costs


def _trade(sim: Simulation, index: int, **changes: Any) -> Simulation:
    trades = list(sim.trades)
    trades[index] = dataclasses.replace(trades[index], **changes)
    return dataclasses.replace(sim, trades=trades)


def _curve(sim: Simulation, name: str, bar: int, delta: float) -> Simulation:
    values = getattr(sim, name).copy()
    values[bar] += delta
    return dataclasses.replace(sim, **{name: values})


BROKEN = {
    "side from the sign": lambda s: _trade(s, 1, side="long"),
    "negative quantity": lambda s: _trade(s, 1, quantity=-s.trades[1].quantity),
    "negative commission": lambda s: _trade(s, 0, commission=-0.5),
    "negative slippage": lambda s: _trade(s, 1, slippage=-0.5),
    "wrong exit reason": lambda s: _trade(s, 0, exit_reason="end_of_data"),
    "pnl off": lambda s: _trade(s, 0, net_pnl=s.trades[0].net_pnl + 1.0),
    "equity off at a bar": lambda s: _curve(s, "equity", 3, 1.0),
    "position off at a bar": lambda s: _curve(s, "position", 2, 1.0),
    "not flagged": lambda s: dataclasses.replace(s, wiped_out_bar=None),
    "flagged late": lambda s: dataclasses.replace(s, wiped_out_bar=6),
    "a trade lost": lambda s: dataclasses.replace(s, trades=s.trades[:1]),
    "traded after": lambda s: _trade(s, 1, exit_bar=7, exit_reason="signal"),
    "fills miscounted": lambda s: dataclasses.replace(s, fills=s.fills + 1),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_the_invariants_reject_a_broken_ledger(breakage: str) -> None:
    sim, orders, close, costs = _wiped_run()
    assert ledger_violations(sim, orders, close, costs) == []
    assert ledger_violations(BROKEN[breakage](sim), orders, close, costs) != []


def test_the_reference_comparison_rejects_a_broken_ledger() -> None:
    sim, orders, close, costs = _wiped_run()
    open_ = np.array([10.0, 10.0, 12.0, 12.0, 12.0, 30.0, 30.0, 30.0, 30.0])
    expected = reference(orders, open_, close, costs)
    assert_agrees_with_reference(sim, expected, costs)
    for broken in (
        _trade(sim, 0, exit_price=sim.trades[0].exit_price * (1 + 1e-6)),
        _curve(sim, "cash", 1, 0.01),
        dataclasses.replace(sim, wiped_out_bar=None),
    ):
        with pytest.raises(AssertionError):
            assert_agrees_with_reference(broken, expected, costs)


# ----------------------------------------------------------------------------- hostile input


def _one(*pairs: tuple[int, Action]) -> Orders:
    return Orders(
        np.array([b for b, _ in pairs], dtype=np.int64), np.array([a for _, a in pairs], dtype=np.int8)
    )


@pytest.mark.parametrize(
    "orders",
    [
        _one((0, Action.OPEN_LONG), (1, Action.OPEN_SHORT)),
        _one((0, Action.OPEN_LONG), (1, Action.CLOSE_SHORT)),
        _one((0, Action.OPEN_SHORT), (1, Action.CLOSE_LONG)),
        _one((0, Action.CLOSE_LONG)),
        _one((1, Action.OPEN_LONG), (1, Action.CLOSE_LONG)),
        _one((2, Action.OPEN_LONG), (1, Action.CLOSE_LONG)),
        _one((-1, Action.OPEN_LONG)),
        Orders(np.array([0]), np.array([9], dtype=np.int8)),
        Orders(np.array([0, 1]), np.array([1], dtype=np.int8)),
    ],
)
def test_orders_the_decision_rules_never_make_are_refused(orders: Orders) -> None:
    prices = np.full(5, 10.0)
    with pytest.raises(ValidationError):
        simulate(orders, prices, prices, list(range(5)), Costs())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_prices_must_be_finite_and_positive(bad: float) -> None:
    good = np.full(4, 10.0)
    broken = good.copy()
    broken[2] = bad
    orders = _one((0, Action.OPEN_LONG))
    for open_, close in ((broken, good), (good, broken)):
        with pytest.raises(ValidationError):
            simulate(orders, open_, close, list(range(4)), Costs())
    with pytest.raises(ValidationError):
        simulate(orders, good, good[:3], list(range(4)), Costs())


@settings(max_examples=200, deadline=None)
@given(
    markets(),
    st.lists(st.tuples(st.integers(-2, 60), st.integers(0, 6)), max_size=12),
    costs_st,
)
def test_arbitrary_orders_are_refused_or_booked_by_the_rules(market, pairs, costs) -> None:
    open_, close = market
    orders = Orders(
        np.array([b for b, _ in pairs], dtype=np.int64), np.array([a for _, a in pairs], dtype=np.int8)
    )
    try:
        sim = simulate(orders, open_, close, list(range(open_.size)), costs)
    except ValidationError:
        return
    assert ledger_violations(sim, orders, close, costs) == []
    assert_agrees_with_reference(sim, reference(orders, open_, close, costs), costs)
