"""Zigzag labels: which way price swings next, by ``threshold`` within ``lookahead`` bars.

For bar ``t`` the label looks at the closes of bars ``t+1 .. t+lookahead`` and finds the first
one that has moved by at least ``threshold`` (a fraction) from ``close[t]``:

* up first -> BUY (0), down first -> SELL (2), neither within the window -> HOLD (1);
* a bar whose window runs past the end of the data and that has not swung yet is unknown
  (:data:`UNLABELLED`, -1): it might still swing, so it is never guessed, only dropped.

Labels use the future by definition; features never do (tests check both sides).
"""

from __future__ import annotations

import numpy as np

from ktrdr.errors import ValidationError
from ktrdr.neural.classes import BUY, HOLD, SELL

UNLABELLED = -1


def zigzag_labels(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    """One int8 label per bar: BUY=0, HOLD=1, SELL=2, or UNLABELLED=-1 near the end."""
    if not 0.0 < threshold < 1.0:
        raise ValidationError(f"zigzag threshold must be in (0, 1), got {threshold}")
    if lookahead < 1:
        raise ValidationError(f"zigzag lookahead must be >= 1, got {lookahead}")
    prices = np.asarray(close, dtype=np.float64)
    n = prices.size
    labels = np.full(n, UNLABELLED, dtype=np.int8)
    if n == 0:
        return labels

    up = prices * (1.0 + threshold)
    down = prices * (1.0 - threshold)
    pending = np.arange(n)  # bars whose first touch is not found yet
    for step in range(1, lookahead + 1):
        pending = pending[pending + step < n]
        if pending.size == 0:
            break
        future = prices[pending + step]
        hit_up = future >= up[pending]
        hit_down = future <= down[pending]
        labels[pending[hit_up]] = BUY
        labels[pending[hit_down & ~hit_up]] = SELL
        pending = pending[~(hit_up | hit_down)]

    # Bars still pending: HOLD when their whole window existed, unknown otherwise.
    complete = np.arange(n) + lookahead < n
    still = labels == UNLABELLED
    labels[still & complete] = HOLD
    return labels
