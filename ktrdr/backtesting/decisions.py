"""Decision rules: class probabilities per bar -> orders, aware of the position they would change.

Per bar ``t`` the signal is the most probable class. It becomes an order only when

* its probability reaches ``confidence_threshold`` and the bar's features are all known;
* at least ``min_signal_separation`` bars passed since the bar of the last order;
* it changes the position: BUY opens a long from flat or closes a short; SELL closes a long, or
  opens a short from flat only when ``allow_short`` is set. BUY while long, SELL while short, and
  HOLD do nothing.

Everything a decision reads belongs to bar ``t`` or earlier, and the order it makes is executed at
the open of bar ``t + 1`` (:mod:`ktrdr.backtesting.positions`), so no future bar can change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ktrdr.neural.classes import BUY, HOLD, SELL
from ktrdr.strategy.schema import Decisions


class Action(IntEnum):
    OPEN_LONG = 1
    CLOSE_LONG = 2
    OPEN_SHORT = 3
    CLOSE_SHORT = 4


@dataclass(frozen=True)
class Orders:
    """Orders in time order: the bar each was decided on and what it does."""

    decision_bars: np.ndarray  # int64
    actions: np.ndarray  # int8 values of Action

    def __len__(self) -> int:
        return int(self.decision_bars.size)


def signals(probabilities: np.ndarray, valid: np.ndarray, confidence_threshold: float) -> np.ndarray:
    """The raw signal per bar (BUY/HOLD/SELL), HOLD where unsure or where features are unknown."""
    raw = np.argmax(probabilities, axis=1).astype(np.int8)
    confident = probabilities.max(axis=1) >= confidence_threshold
    return np.where(confident & valid, raw, np.int8(HOLD)).astype(np.int8)


def decide(probabilities: np.ndarray, valid: np.ndarray, rules: Decisions) -> Orders:
    """Orders from per-bar probabilities (shape ``(bars, 3)``) under ``rules``."""
    signal = signals(probabilities, valid, rules.confidence_threshold)
    candidates = np.flatnonzero(signal != HOLD)
    candidate_signals = signal[candidates]

    bars: list[int] = []
    actions: list[int] = []
    position = 0  # +1 long, -1 short, 0 flat
    last_bar = -(10**18)
    separation = rules.min_signal_separation
    allow_short = rules.allow_short
    # The loop visits only confident BUY/SELL bars, and does the least per bar.
    for bar, sig in zip(candidates.tolist(), candidate_signals.tolist(), strict=True):
        if bar - last_bar < separation:
            continue
        if sig == BUY:
            if position == 0:
                action, position = Action.OPEN_LONG, 1
            elif position == -1:
                action, position = Action.CLOSE_SHORT, 0
            else:
                continue
        elif sig == SELL:
            if position == 1:
                action, position = Action.CLOSE_LONG, 0
            elif position == 0 and allow_short:
                action, position = Action.OPEN_SHORT, -1
            else:
                continue
        else:
            continue
        bars.append(bar)
        actions.append(action)
        last_bar = bar
    return Orders(np.asarray(bars, dtype=np.int64), np.asarray(actions, dtype=np.int8))
