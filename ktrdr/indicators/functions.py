"""The indicator functions (numpy/pandas, vectorised) and ``compute_indicators`` for strategies.

Each takes an OHLCV DataFrame and keyword parameters and returns a float64 Series aligned to the
input index (or a DataFrame with named columns). Values are NaN during warm-up, and a value at bar t
depends only on bars up to t. Recursive averages are seeded as TA-Lib seeds them:

- ``ema``: alpha = 2/(n+1), seeded with the SMA of the first n values (first value at bar n-1).
- Wilder smoothing (``rsi``, ``atr``, ``adx``): alpha = 1/n, seeded with the mean of the first n
  inputs (RSI's and ATR's inputs start at bar 1, so their first value is at bar n).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.errors import ValidationError
from ktrdr.indicators.specs import check_indicator, find_spec, output_columns, resolve_params

_CCI_CHUNK = 1 << 15


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype="float64", na_value=np.nan)


def _series(values: np.ndarray, df: pd.DataFrame, name: str | None = None) -> pd.Series:
    return pd.Series(values, index=df.index, name=name, dtype="float64")


def _seeded_ewm(values: np.ndarray, alpha: float, period: int, divisor: int | None = None) -> np.ndarray:
    """EMA with smoothing ``alpha`` seeded by the sum of the first ``period`` non-NaN values / ``divisor``
    (default ``period``: their mean).

    Leading NaNs (another indicator's warm-up) are skipped; the first output is at the seed's last bar.
    """
    out = np.full(len(values), np.nan)
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) == 0:
        return out
    first = int(valid[0])
    seed_end = first + period - 1
    if seed_end >= len(values):
        return out
    tail = values[seed_end:].copy()
    tail[0] = values[first : seed_end + 1].sum() / (divisor or period)
    out[seed_end:] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def _rolling_max(values: np.ndarray, period: int) -> np.ndarray:
    return pd.Series(values).rolling(period).max().to_numpy()


def _rolling_min(values: np.ndarray, period: int) -> np.ndarray:
    return pd.Series(values).rolling(period).min().to_numpy()


def _safe_ratio(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    """num / den, with ``fill`` where den is 0 (a flat window) and NaN where either is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[(den == 0) & ~np.isnan(num)] = fill
    return out


def _true_range(df: pd.DataFrame) -> np.ndarray:
    high, low, close = _col(df, "high"), _col(df, "low"), _col(df, "close")
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    tr[0] = np.nan  # TA-Lib's true range starts at bar 1
    return tr


# --- moving averages ---------------------------------------------------------------------------


def sma(df: pd.DataFrame, period: int = 20, source: str = "close") -> pd.Series:
    return _series(pd.Series(_col(df, source)).rolling(period).mean().to_numpy(), df, "sma")


def ema(df: pd.DataFrame, period: int = 20, source: str = "close") -> pd.Series:
    return _series(_seeded_ewm(_col(df, source), 2.0 / (period + 1), period), df, "ema")


# --- momentum ----------------------------------------------------------------------------------


def rsi(df: pd.DataFrame, period: int = 14, source: str = "close") -> pd.Series:
    """100 - 100/(1 + avg gain/avg loss), Wilder-smoothed; 100 when there are no losses."""
    delta = np.diff(_col(df, source), prepend=np.nan)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    gain[0] = loss[0] = np.nan
    avg_gain = _seeded_ewm(gain, 1.0 / period, period)
    avg_loss = _seeded_ewm(loss, 1.0 / period, period)
    total = avg_gain + avg_loss
    values = _safe_ratio(100.0 * avg_gain, total, 50.0)
    return _series(values, df, "rsi")


def macd(
    df: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9, source: str = "close"
) -> pd.DataFrame:
    """macd = EMA(fast) - EMA(slow); signal = EMA(macd, signal); histogram = macd - signal."""
    close = _col(df, source)
    line = _seeded_ewm(close, 2.0 / (fast + 1), fast) - _seeded_ewm(close, 2.0 / (slow + 1), slow)
    sig = _seeded_ewm(line, 2.0 / (signal + 1), signal)
    return pd.DataFrame({"macd": line, "signal": sig, "histogram": line - sig}, index=df.index)


def stochastic(df: pd.DataFrame, k_period: int = 14, d_period: int = 3) -> pd.DataFrame:
    """Fast %K = 100 (close - lowest low)/(highest high - lowest low), %D = SMA(%K); 50 on a flat window."""
    low = _rolling_min(_col(df, "low"), k_period)
    high = _rolling_max(_col(df, "high"), k_period)
    k = _safe_ratio(100.0 * (_col(df, "close") - low), high - low, 50.0)
    d = pd.Series(k).rolling(d_period).mean().to_numpy()
    return pd.DataFrame({"k": k, "d": d}, index=df.index)


def williams_r(df: pd.DataFrame, period: int = 14) -> pd.Series:
    """-100 (highest high - close)/(highest high - lowest low), in [-100, 0]; -50 on a flat window."""
    low = _rolling_min(_col(df, "low"), period)
    high = _rolling_max(_col(df, "high"), period)
    return _series(_safe_ratio(-100.0 * (high - _col(df, "close")), high - low, -50.0), df, "williams_r")


def roc(df: pd.DataFrame, period: int = 10, source: str = "close") -> pd.Series:
    """100 (price / price n bars ago - 1)."""
    values = _col(df, source)
    out = np.full(len(values), np.nan)
    out[period:] = 100.0 * (values[period:] / values[:-period] - 1.0)
    return _series(out, df, "roc")


def cci(df: pd.DataFrame, period: int = 20) -> pd.Series:
    """(typical price - SMA) / (0.015 x mean absolute deviation from that SMA), over ``period`` bars."""
    tp = (_col(df, "high") + _col(df, "low") + _col(df, "close")) / 3.0
    n = len(tp)
    out = np.full(n, np.nan)
    if n >= period:
        windows = np.lib.stride_tricks.sliding_window_view(tp, period)
        for start in range(0, len(windows), _CCI_CHUNK):
            block = windows[start : start + _CCI_CHUNK]
            mean = block.mean(axis=1)
            mad = np.abs(block - mean[:, None]).mean(axis=1)
            rows = slice(start + period - 1, start + period - 1 + len(block))
            out[rows] = _safe_ratio(tp[rows] - mean, 0.015 * mad, 0.0)
    return _series(out, df, "cci")


def adx(df: pd.DataFrame, period: int = 14) -> pd.DataFrame:
    """Wilder's directional movement: +DI, -DI and ADX (the Wilder average of DX)."""
    high, low = _col(df, "high"), _col(df, "low")
    up = np.diff(high, prepend=np.nan)
    down = -np.diff(low, prepend=np.nan)
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    plus_dm[0] = minus_dm[0] = np.nan
    tr = _true_range(df)
    # Wilder's running sums S_t = S_{t-1} - S_{t-1}/n + x_t start from the sum of bars 1..n-1 (as in
    # TA-Lib); S/n is then an EMA(1/n) seeded at bar n-1 with that sum / n.
    alpha = 1.0 / period
    s_tr = _seeded_ewm(tr, alpha, period - 1, divisor=period)
    s_plus = _seeded_ewm(plus_dm, alpha, period - 1, divisor=period)
    s_minus = _seeded_ewm(minus_dm, alpha, period - 1, divisor=period)
    plus_di = _safe_ratio(100.0 * s_plus, s_tr, 0.0)
    minus_di = _safe_ratio(100.0 * s_minus, s_tr, 0.0)
    plus_di[:period] = minus_di[:period] = np.nan
    dx = _safe_ratio(100.0 * np.abs(plus_di - minus_di), plus_di + minus_di, 0.0)
    adx_values = _seeded_ewm(dx, alpha, period)
    return pd.DataFrame({"adx": adx_values, "plus_di": plus_di, "minus_di": minus_di}, index=df.index)


# --- volatility and volume ---------------------------------------------------------------------


def bollinger_bands(
    df: pd.DataFrame, period: int = 20, std: float = 2.0, source: str = "close"
) -> pd.DataFrame:
    """middle = SMA; upper/lower = middle ± std x population standard deviation over ``period`` bars."""
    rolling = pd.Series(_col(df, source)).rolling(period)
    middle = rolling.mean().to_numpy()
    width = std * rolling.std(ddof=0).to_numpy()
    return pd.DataFrame({"upper": middle + width, "middle": middle, "lower": middle - width}, index=df.index)


def atr(df: pd.DataFrame, period: int = 14) -> pd.Series:
    """Wilder average of the true range (first value at bar ``period``)."""
    return _series(_seeded_ewm(_true_range(df), 1.0 / period, period), df, "atr")


def obv(df: pd.DataFrame) -> pd.Series:
    """On-balance volume, starting from the first bar's volume (as TA-Lib does)."""
    close, volume = _col(df, "close"), _col(df, "volume")
    signed = np.sign(np.diff(close, prepend=close[:1])) * volume
    signed[:1] = volume[:1]
    return _series(np.cumsum(signed), df, "obv")


# --- registry ----------------------------------------------------------------------------------

REGISTRY: dict[str, Callable[..., pd.Series | pd.DataFrame]] = {
    "sma": sma,
    "ema": ema,
    "rsi": rsi,
    "macd": macd,
    "bollinger_bands": bollinger_bands,
    "atr": atr,
    "stochastic": stochastic,
    "williams_r": williams_r,
    "roc": roc,
    "obv": obv,
    "cci": cci,
    "adx": adx,
}


def compute_indicator(df: pd.DataFrame, indicator_id: str, config: Mapping[str, Any]) -> pd.DataFrame:
    """One strategy indicator entry (``{type: rsi, period: 14}``) as its named columns."""
    problems = check_indicator(config)
    if problems:
        key, msg = problems[0]
        raise ValidationError(f"indicator {indicator_id}.{key}: {msg}", details={"indicator": indicator_id})
    spec = find_spec(config["type"])
    assert spec is not None
    result = REGISTRY[spec.name](df, **resolve_params(config))
    columns = output_columns(indicator_id, config)
    if isinstance(result, pd.Series):
        return pd.DataFrame({columns[0]: result.to_numpy()}, index=df.index)
    return pd.DataFrame(
        {col: result[out].to_numpy() for col, out in zip(columns, spec.outputs, strict=True)}, index=df.index
    )


def compute_indicators(df: pd.DataFrame, indicators: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """All entries, in order: a column per indicator id, ``id.output`` columns for multi-output ones."""
    frames = [compute_indicator(df, ind_id, config) for ind_id, config in indicators.items()]
    if not frames:
        return pd.DataFrame(index=df.index)
    return pd.concat(frames, axis=1)
