"""The position manager: executes orders at the next bar's open, with costs and sizing, and
produces the trades and the equity curve.

* An order decided on bar ``t`` fills at the open of bar ``t + 1``; an order decided on the last
  bar is never filled.
* Fill prices carry slippage against the trader: buys at ``open x (1 + slippage)``, sells at
  ``open x (1 - slippage)``. Commission is ``commission x`` the filled notional, paid on each fill.
* Sizing: a position opens from flat with ``position_fraction`` of the equity (cash) as notional,
  commission included; quantities are fractional, so any price scale works.
* A position still open after the last bar is closed at the last close (same costs) and its trade
  says ``exit_reason: "end_of_data"``.
* Equity at each bar's close is ``cash + quantity x close``; between fills both are constant, so the
  curve is computed for all bars at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

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
        if self.initial_capital <= 0:
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
    quantity: float
    gross_pnl: float
    commission: float
    slippage: float
    net_pnl: float
    return_pct: float
    bars_held: int
    exit_reason: str  # "signal" | "end_of_data"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Simulation:
    equity: np.ndarray  # per bar, at the close
    position: np.ndarray  # signed quantity held at each bar's close
    trades: list[Trade]
    fills: int


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
    n = close.size
    cash = costs.initial_capital
    quantity = 0.0
    fill_bars: list[int] = []
    cash_after: list[float] = []
    qty_after: list[float] = []
    trades: list[Trade] = []
    entry: tuple[int, float, float, float, float] | None = None  # bar, price, qty, commission, slip cost

    commission, slippage, fraction = costs.commission, costs.slippage, costs.position_fraction
    for decided, action in zip(orders.decision_bars.tolist(), orders.actions.tolist(), strict=True):
        bar = decided + 1
        if bar >= n:
            break
        price = float(open_[bar])
        if action == Action.OPEN_LONG or action == Action.OPEN_SHORT:
            long = action == Action.OPEN_LONG
            fill = price * (1 + slippage) if long else price * (1 - slippage)
            qty = cash * fraction / (fill * (1 + commission))
            fee = qty * fill * commission
            quantity = qty if long else -qty
            cash += -qty * fill - fee if long else qty * fill - fee
            entry = (bar, fill, qty, fee, qty * price * slippage)
        else:
            if entry is None:
                raise ValidationError(f"order {Action(action).name} on bar {decided} with no open position")
            trades.append(_close(len(trades), entry, quantity, price, bar, times, costs, "signal"))
            cash = _cash_after_close(cash, quantity, price, costs)
            quantity, entry = 0.0, None
        fill_bars.append(bar)
        cash_after.append(cash)
        qty_after.append(quantity)

    states = np.searchsorted(np.asarray(fill_bars, dtype=np.int64), np.arange(n), side="right")
    cash_curve = np.concatenate(([costs.initial_capital], np.asarray(cash_after)))[states]
    qty_curve = np.concatenate(([0.0], np.asarray(qty_after)))[states]
    equity = cash_curve + qty_curve * close

    if entry is not None and n > 0:
        last = n - 1
        final_price = float(close[last])
        trades.append(_close(len(trades), entry, quantity, final_price, last, times, costs, "end_of_data"))
        equity[last] = _cash_after_close(cash, quantity, final_price, costs)
        qty_curve[last] = 0.0
    return Simulation(equity=equity, position=qty_curve, trades=trades, fills=len(fill_bars))


def _cash_after_close(cash: float, quantity: float, price: float, costs: Costs) -> float:
    long = quantity > 0
    fill = price * (1 - costs.slippage) if long else price * (1 + costs.slippage)
    fee = abs(quantity) * fill * costs.commission
    return cash + quantity * fill - fee


def _close(
    trade_id: int,
    entry: tuple[int, float, float, float, float],
    quantity: float,
    price: float,
    bar: int,
    times: Sequence[Any],
    costs: Costs,
    reason: str,
) -> Trade:
    entry_bar, entry_fill, qty, entry_fee, entry_slip = entry
    long = quantity > 0
    exit_fill = price * (1 - costs.slippage) if long else price * (1 + costs.slippage)
    exit_fee = qty * exit_fill * costs.commission
    gross = (exit_fill - entry_fill) * qty if long else (entry_fill - exit_fill) * qty
    fees = entry_fee + exit_fee
    net = gross - fees
    return Trade(
        trade_id=trade_id,
        side="long" if long else "short",
        entry_bar=entry_bar,
        exit_bar=bar,
        entry_time=_iso(times[entry_bar]),
        exit_time=_iso(times[bar]),
        entry_price=entry_fill,
        exit_price=exit_fill,
        quantity=qty,
        gross_pnl=gross,
        commission=fees,
        slippage=entry_slip + qty * price * costs.slippage,
        net_pnl=net,
        return_pct=net / (entry_fill * qty) * 100.0 if qty else 0.0,
        bars_held=bar - entry_bar,
        exit_reason=reason,
    )


def _iso(moment: Any) -> str:
    return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)
