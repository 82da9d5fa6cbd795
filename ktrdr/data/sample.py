"""Deterministic synthetic OHLCV data, and the small sample datasets shipped inside the package.

``generate_ohlcv`` alternates trending regimes (returns with momentum and a drift) and ranging regimes
(log price mean-reverting to a level), so indicators carry real, learnable information. The bundled
files in ``ktrdr/data/samples/`` are exactly its output for the seeds in ``SAMPLE_DATASETS``
(regenerate with ``python -m ktrdr.data.sample``). ``install_sample_data`` is stdlib only.
"""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ktrdr.data.catalog import DatasetInfo, dataset_info, dataset_path
from ktrdr.data.names import TIMEFRAME_SECONDS
from ktrdr.names import validate_timeframe

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

# (symbol, timeframe, bars, seed): what ktrdr/data/samples/ holds.
SAMPLE_DATASETS: tuple[tuple[str, str, int, int], ...] = (
    ("EURUSD", "1h", 12_000, 7),
    ("EURUSD", "1d", 2_000, 11),
)


def generate_ohlcv(
    n_bars: int,
    *,
    timeframe: str = "1h",
    seed: int = 0,
    start: dt.datetime = DEFAULT_START,
    base_price: float = 1.1,
) -> pd.DataFrame:
    """``n_bars`` valid OHLCV bars (UTC index "timestamp"), the same for the same arguments."""
    import numpy as np
    import pandas as pd

    timeframe = validate_timeframe(timeframe)
    if n_bars < 1:
        raise ValueError(f"n_bars must be >= 1, got {n_bars}")
    rng = np.random.default_rng(seed)
    bar_seconds = TIMEFRAME_SECONDS[timeframe]
    sigma = min(0.02, 0.001 * (bar_seconds / 3600) ** 0.5)

    eps = rng.standard_normal(n_bars).tolist()
    # Regimes: (start bar, trending?, drift size, draw that picks the trend's direction).
    starts = []
    i, is_trend = 0, bool(rng.integers(2))
    while i < n_bars:
        starts.append((i, is_trend, sigma * rng.uniform(0.3, 0.5), rng.uniform()))
        i += int(rng.integers(60, 240))
        is_trend = not is_trend
    regime_at = dict(enumerate(starts))
    regime_by_bar = {start: k for k, (start, *_) in regime_at.items()}

    log_close = np.empty(n_bars)
    trending = np.zeros(n_bars, dtype=bool)
    anchor = x = level = float(np.log(base_price))
    r = drift = 0.0
    is_trend = False
    for t in range(n_bars):
        if t in regime_by_bar:
            _, is_trend, size, draw = regime_at[regime_by_bar[t]]
            # Trends lean back towards the starting price (65%) so long series stay in a sane range.
            toward = -1.0 if x > anchor else 1.0
            drift = size * (toward if draw < 0.65 else -toward)
        if is_trend:
            r = 0.3 * r + drift + sigma * eps[t]
            level = x + r
        else:
            r = -0.08 * (x - level) - 0.15 * r + sigma * eps[t]
        trending[t] = is_trend
        x += r
        log_close[t] = x

    close = np.round(np.exp(log_close), 5)
    open_ = np.concatenate([[np.round(base_price, 5)], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n_bars))) * sigma * 0.6
    high = np.round(np.maximum(open_, close) * np.exp(wick[0]), 5)
    low = np.round(np.minimum(open_, close) * np.exp(-wick[1]), 5)
    high = np.maximum.reduce([high, open_, close])
    low = np.minimum.reduce([low, open_, close])
    volume = np.round(rng.lognormal(7.0, 0.4, n_bars) * np.where(trending, 1.5, 1.0))

    index = pd.date_range(start, periods=n_bars, freq=pd.Timedelta(seconds=bar_seconds), name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index.as_unit("ns"),
        dtype="float64",
    )


def bundled_sample_files() -> list[tuple[str, str]]:
    """(symbol, timeframe) of each dataset shipped in the package."""
    return [(symbol, timeframe) for symbol, timeframe, _, _ in SAMPLE_DATASETS]


def install_sample_data(data_dir: Path | str) -> list[DatasetInfo]:
    """Copy each bundled sample dataset into ``data_dir`` unless a dataset of that name is already there.

    Returns the datasets it installed (an empty list when all were present).
    """
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    installed: list[DatasetInfo] = []
    samples = resources.files("ktrdr.data") / "samples"
    for symbol, timeframe in bundled_sample_files():
        target = dataset_path(root, symbol, timeframe)
        if target.exists():
            continue
        tmp = target.with_name(f".{target.name}.installing")
        with (samples / target.name).open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(target)
        installed.append(dataset_info(root, symbol, timeframe))
    return installed


def _write_bundled_samples() -> None:  # pragma: no cover - maintenance entry point
    from ktrdr.data.store import save_ohlcv

    out = Path(__file__).parent / "samples"
    for symbol, timeframe, bars, seed in SAMPLE_DATASETS:
        info = save_ohlcv(generate_ohlcv(bars, timeframe=timeframe, seed=seed), out, symbol, timeframe)
        print(f"{symbol} {timeframe}: {info.rows} rows, {info.size_bytes} bytes")
    shutil.rmtree(out / ".meta", ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    _write_bundled_samples()
