"""The position manager: executes orders at the next bar's open, with costs and sizing, and
produces the trades and the equity curve. docs/models.md ("Position manager") is the reference
for these rules:

* An order decided on bar ``t`` fills at the open of bar ``t + 1``; an order decided on the last
  bar is never filled. Orders must come as :mod:`ktrdr.backtesting.decisions` makes them: at most
  one per bar, each open from flat followed by the close of that same side.
* The side of a trade is the side of the order that opened it. Quantities are positive; only the
  ``position`` curve is signed (negative while short).
* Fill prices carry slippage against the trader: buys at ``open x (1 + slippage)``, sells at
  ``open x (1 - slippage)``. Commission is ``commission x`` the filled notional, paid on each fill.
* Sizing: a position opens from flat with ``position_fraction`` of the equity (cash) as notional,
  commission included; quantities are fractional, so any price scale works.
* Equity at each bar's close is ``cash + signed quantity x close``; between fills both are
  constant, so the curve is computed for all bars at once.
* Wiped out: the first bar whose closing equity is at or below zero (a short squeezed far enough,
  or covered at such a price). No order fills after that bar; a position still open at its close
  is closed there (same costs, ``exit_reason: "wiped_out"``), and equity stays at what is left,
  which can be below zero: the loss beyond the account is shown, not hidden.
* A position still open after the last bar is closed at the last close (same costs) and its trade
  says ``exit_reason: "end_of_data"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from ktrdr.backtesting.decisions import Action, Orders
from ktrdr.errors import ValidationError


@dataclass(frozen=True)
class Costs:
    initial_capital: float = 100_000.0
    commission: float = 0.001
    slippage: float = 0.0005
    position_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_capital < float("inf"):
            raise ValidationError(f"initial_capital must be > 0, got {self.initial_capital}")
        if not 0 <= self.commission < 1 or not 0 <= self.slippage < 1:
            raise ValidationError("commission and slippage must be fractions in [0, 1)")
        if not 0 < self.position_fraction <= 1:
            raise ValidationError(f"position_fraction must be in (0, 1], got {self.position_fraction}")


@dataclass(frozen=True)
class Trade:
    trade_id: int
    side: str  # "long" | "short"
    entry_bar: int
    exit_bar: int
    entry_time: str
    exit_time: str
    entry_price: float
    exit_price: float
    quantity: float  # > 0; the side says which way
    gross_pnl: float
    commission: float
    slippage: float
    net_pnl: float
    return_pct: float
    bars_held: int
    exit_reason: str  # "signal" | "end_of_data" | "wiped_out"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Simulation:
    equity: np.ndarray  # per bar, at the close
    cash: np.ndarray  # per bar, at the close
    position: np.ndarray  # signed quantity held at each bar's close (negative while short)
    trades: list[Trade]
    fills: int  # orders filled
    wiped_out_bar: int | None = None  # the first bar whose closing equity is <= 0; None: never


class _Entry(NamedTuple):
    bar: int
    long: bool
    price: float  # the fill, slippage included
    quantity: float  # > 0
    commission: float
    slippage: float  # its cost in money


@dataclass
class _Ledger:
    """The book after a run of fills: one entry per fill, the closed trades, what is still open."""

    fill_bars: list[int]
    cash_after: list[float]
    position_after: list[float]
    trades: list[Trade]
    entry: _Entry | None
    cash: float


def simulate(
    orders: Orders,
    open_: np.ndarray,
    close: np.ndarray,
    times: Sequence[Any],
    costs: Costs,
) -> Simulation:
    """Fill ``orders`` over the bars and return trades and the equity curve.

    ``times`` labels the bars in trades (timestamps or anything printable); only the bars of
    fills are read, so a ``DatetimeIndex`` costs nothing to pass.
    """
    n = _check_inputs(orders, open_, close, times)
    ledger = _fill(orders, open_, n, times, costs)
    cash, position = _curves(ledger, n, costs)
    equity = cash + position * close

    wiped = _first_at_or_below_zero(equity)
    if wiped is not None:
        # Nothing after the wiped-out bar happened: book again only the orders filled by then.
        # The curves up to that bar came from those same fills, so they stand.
        filled = int(np.searchsorted(orders.decision_bars, wiped, side="left"))
        ledger = _fill(Orders(orders.decision_bars[:filled], orders.actions[:filled]), open_, n, times, costs)
        _settle(ledger, wiped, close, times, costs, "wiped_out", equity, cash, position)
    elif ledger.entry is not None:
        _settle(ledger, n - 1, close, times, costs, "end_of_data", equity, cash, position)
        if equity[-1] <= 0:  # the closing costs took the last of it
            wiped = n - 1
    return Simulation(
        equity=equity,
        cash=cash,
        position=position,
        trades=ledger.trades,
        fills=len(ledger.fill_bars),
        wiped_out_bar=wiped,
    )


def _fill(orders: Orders, open_: np.ndarray, n: int, times: Sequence[Any], costs: Costs) -> _Ledger:
    """Execute the orders that fill before bar ``n``, in order, from the initial capital."""
    cash = costs.initial_capital
    fill_bars: list[int] = []
    cash_after: list[float] = []
    position_after: list[float] = []
    trades: list[Trade] = []
    entry: _Entry | None = None

    commission, slippage, fraction = costs.commission, costs.slippage, costs.position_fraction
    for decided, action in zip(orders.decision_bars.tolist(), orders.actions.tolist(), strict=True):
        bar = decided + 1
        if bar >= n:
            break
        price = float(open_[bar])
        if action == Action.OPEN_LONG or action == Action.OPEN_SHORT:
            if cash <= 0:  # flat at or below zero: wiped out (simulate ends the run at that bar)
                break
            long = action == Action.OPEN_LONG
            fill = price * (1 + slippage) if long else price * (1 - slippage)
            qty = cash * fraction / (fill * (1 + commission))
            fee = qty * fill * commission
            cash += -qty * fill - fee if long else qty * fill - fee
            entry = _Entry(bar, long, fill, qty, fee, qty * price * slippage)
            position_after.append(qty if long else -qty)
        else:
            assert entry is not None  # _check_inputs: each close follows the open of its side
            trade, proceeds = _close(len(trades), entry, price, bar, times, costs, "signal")
            trades.append(trade)
            cash += proceeds
            entry = None
            position_after.append(0.0)
        fill_bars.append(bar)
        cash_after.append(cash)
    return _Ledger(fill_bars, cash_after, position_after, trades, entry, cash)


def _curves(ledger: _Ledger, n: int, costs: Costs) -> tuple[np.ndarray, np.ndarray]:
    """Cash and signed position at every bar's close, for all bars at once."""
    states = np.searchsorted(np.asarray(ledger.fill_bars, dtype=np.int64), np.arange(n), side="right")
    cash = np.concatenate(([costs.initial_capital], np.asarray(ledger.cash_after)))[states]
    position = np.concatenate(([0.0], np.asarray(ledger.position_after)))[states]
    return cash, position


def _first_at_or_below_zero(equity: np.ndarray) -> int | None:
    at_or_below = equity <= 0
    first = int(at_or_below.argmax()) if at_or_below.size else 0
    return first if at_or_below.size and at_or_below[first] else None


def _settle(
    ledger: _Ledger,
    bar: int,
    close: np.ndarray,
    times: Sequence[Any],
    costs: Costs,
    reason: str,
    equity: np.ndarray,
    cash: np.ndarray,
    position: np.ndarray,
) -> None:
    """Close what is open at ``bar``'s close, and hold the account flat from that close on."""
    if ledger.entry is not None:
        trade, proceeds = _close(
            len(ledger.trades), ledger.entry, float(close[bar]), bar, times, costs, reason
        )
        ledger.trades.append(trade)
        ledger.cash += proceeds
        ledger.entry = None
    cash[bar:] = ledger.cash
    position[bar:] = 0.0
    equity[bar:] = ledger.cash


def _close(
    trade_id: int,
    entry: _Entry,
    price: float,
    bar: int,
    times: Sequence[Any],
    costs: Costs,
    reason: str,
) -> tuple[Trade, float]:
    """The trade that closing ``entry`` at market ``price`` makes, and what it brings to cash.

    Closing a long sells and closing a short buys, so slippage goes against the trader either way.
    """
    qty = entry.quantity
    if entry.long:
        exit_fill = price * (1 - costs.slippage)
        gross = (exit_fill - entry.price) * qty
        proceeds = qty * exit_fill
    else:
        exit_fill = price * (1 + costs.slippage)
        gross = (entry.price - exit_fill) * qty
        proceeds = -qty * exit_fill
    exit_fee = qty * exit_fill * costs.commission
    fees = entry.commission + exit_fee
    net = gross - fees
    trade = Trade(
        trade_id=trade_id,
        side="long" if entry.long else "short",
        entry_bar=entry.bar,
        exit_bar=bar,
        entry_time=_iso(times[entry.bar]),
        exit_time=_iso(times[bar]),
        entry_price=entry.price,
        exit_price=exit_fill,
        quantity=qty,
        gross_pnl=gross,
        commission=fees,
        slippage=entry.slippage + qty * price * costs.slippage,
        net_pnl=net,
        return_pct=net / (entry.price * qty) * 100.0,
        bars_held=bar - entry.bar,
        exit_reason=reason,
    )
    return trade, proceeds - exit_fee


def _check_inputs(orders: Orders, open_: np.ndarray, close: np.ndarray, times: Sequence[Any]) -> int:
    """The number of bars, once the inputs are known to fit together; ValidationError if not."""
    n = int(close.size)
    if close.ndim != 1 or open_.shape != close.shape or len(times) != n:
        raise ValidationError(
            f"open, close and times must be as long as each other, "
            f"got {open_.shape}, {close.shape}, {len(times)}"
        )
    for name, prices in (("open", open_), ("close", close)):
        if not (np.isfinite(prices).all() and (prices > 0).all()):
            raise ValidationError(f"{name} prices must be finite and > 0")
    bars, actions = orders.decision_bars, orders.actions
    if bars.shape != actions.shape or bars.ndim != 1:
        raise ValidationError("orders need one action per decision bar")
    if bars.size and (bars[0] < 0 or bars[-1] >= n or (np.diff(bars) <= 0).any()):
        raise ValidationError("orders must be in time order, at most one per bar, on bars of the data")
    # Opens from flat at even places, each followed by the close of its own side.
    opens, closes = actions[0::2], actions[1::2]
    wrong = np.zeros(actions.size, dtype=bool)
    wrong[0::2] = (opens != Action.OPEN_LONG) & (opens != Action.OPEN_SHORT)
    their_closes = np.where(opens == Action.OPEN_LONG, Action.CLOSE_LONG, Action.CLOSE_SHORT)
    wrong[1::2] = closes != their_closes[: closes.size]
    if wrong.any():
        first = int(wrong.argmax())
        raise ValidationError(
            f"order {first} ({_action_name(actions[first])} on bar {bars[first]}) is out of turn: "
            "each order opens a position from flat or closes the open one of its own side"
        )
    return n


def _action_name(value: int) -> str:
    return Action(value).name if value in set(Action) else f"unknown action {value}"


def _iso(moment: Any) -> str:
    return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)
