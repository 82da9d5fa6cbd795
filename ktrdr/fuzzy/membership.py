"""Membership functions on numpy arrays: triangular, trapezoidal, gaussian.

Values are in [0, 1]; NaN in gives NaN out (indicator warm-up stays visible). Degenerate edges are
shoulders: with ``a == b`` the set is fully on from ``a`` (a step, not a division by zero), likewise
``c == d`` on the right, and infinite parameters (``-.inf`` in YAML) make an open shoulder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _rising(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 below a, 1 from b, linear between; a step at a when a == b or a is -inf."""
    if b <= a or np.isinf(a):
        return np.where(x >= a, 1.0, 0.0)
    with np.errstate(over="ignore"):  # a huge slope saturates to 1 after clipping
        return np.clip((x - a) / (b - a), 0.0, 1.0)


def _falling(x: np.ndarray, c: float, d: float) -> np.ndarray:
    """1 up to c, 0 from d, linear between; a step at d when c == d or d is +inf."""
    if d <= c or np.isinf(d):
        return np.where(x <= d, 1.0, 0.0)
    with np.errstate(over="ignore"):
        return np.clip((d - x) / (d - c), 0.0, 1.0)


def trapezoidal(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 outside [a, d], 1 on [b, c], linear on the edges."""
    x = np.asarray(x, dtype="float64")
    out = np.minimum(_rising(x, a, b), _falling(x, c, d))
    return np.where(np.isnan(x), np.nan, out)


def triangular(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """0 outside [a, c], 1 at b, linear between."""
    return trapezoidal(x, a, b, b, c)


def gaussian(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """exp(-((x - mu) / sigma)^2 / 2)."""
    if sigma <= 0:
        raise ValueError(f"gaussian sigma must be > 0, got {sigma}")
    x = np.asarray(x, dtype="float64")
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


MEMBERSHIP_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "triangular": triangular,
    "trapezoidal": trapezoidal,
    "gaussian": gaussian,
}


def membership(kind: str, x: np.ndarray, parameters: Sequence[float]) -> np.ndarray:
    """Apply the named membership function with the strategy's parameter list."""
    try:
        function = MEMBERSHIP_FUNCTIONS[kind]
    except KeyError:
        raise ValueError(f"unknown membership function {kind!r}") from None
    return function(x, *parameters)
