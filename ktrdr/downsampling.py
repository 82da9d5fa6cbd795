"""Downsampling that keeps the peaks, for the series a stored result charts.

A result keeps its curves (equity, drawdown, price, per-epoch losses) at a few hundred points, so
it stays small however long the run was. Evenly spaced points would drop the very peaks and
troughs a reader looks for first; :func:`extreme_indices` instead cuts the series into equal
buckets and keeps, in every bucket, the positions of each series' minimum and maximum (plus the
first and last point, and any positions asked for). Every series' global minimum and maximum is
therefore kept, and a line drawn through the kept points has the same envelope as the full one,
bucket by bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def extreme_indices(series: Sequence[np.ndarray], max_points: int, keep: Iterable[int] = ()) -> np.ndarray:
    """Sorted positions (int64) to keep of ``series`` (all as long as each other): at most
    ``max_points`` of them; all positions when the series are that short already.

    Non-finite values never win a bucket over finite ones. ``keep`` names positions that must
    stay (e.g. the best epoch); they count against ``max_points``.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in series]
    if not arrays:
        raise ValueError("extreme_indices needs at least one series")
    n = arrays[0].size
    if any(a.ndim != 1 or a.size != n for a in arrays):
        raise ValueError("the series must be one-dimensional and as long as each other")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    forced = {0, n - 1} | {int(i) for i in keep if 0 <= int(i) < n}
    buckets = (max_points - len(forced)) // (2 * len(arrays))
    if buckets < 1:
        raise ValueError(
            f"max_points={max_points} leaves no room for one bucket of {len(arrays)} series "
            f"beside {len(forced)} kept positions"
        )
    bounds = np.linspace(0, n, buckets + 1).astype(np.int64)
    picks = [np.fromiter(forced, dtype=np.int64)]
    for values in arrays:
        finite = np.isfinite(values)
        low = np.where(finite, values, np.inf)
        high = np.where(finite, values, -np.inf)
        starts, ends = bounds[:-1], bounds[1:]
        picks.append(np.array([s + int(low[s:e].argmin()) for s, e in zip(starts, ends, strict=True)]))
        picks.append(np.array([s + int(high[s:e].argmax()) for s, e in zip(starts, ends, strict=True)]))
    return np.unique(np.concatenate(picks)).astype(np.int64)


def compact(values: Iterable[float], digits: int = 8) -> list[float | None]:
    """``values`` as JSON-safe floats rounded to ``digits`` significant digits (a chart needs no
    more, and the stored result gets about half as long); NaN and infinities become None."""
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in map(float, values)]
