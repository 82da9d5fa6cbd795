"""Indicators against TA-Lib (1e-5 relative) and against hand-written references of our definitions."""

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
talib = pytest.importorskip("talib")

from ktrdr.data.sample import generate_ohlcv  # noqa: E402
from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.indicators import REGISTRY, compute_indicators  # noqa: E402
from ktrdr.indicators import functions as ind  # noqa: E402
from ktrdr.indicators.specs import CATALOG  # noqa: E402

RTOL = 1e-5


@pytest.fixture(scope="module")
def df():
    return generate_ohlcv(1500, seed=5)


def cols(df):
    return (df[c].to_numpy() for c in ("high", "low", "close", "volume"))


def assert_close(ours, ref, skip=0):
    ours = np.asarray(ours, dtype=float)
    ref = np.asarray(ref, dtype=float)
    both = ~np.isnan(ref) & ~np.isnan(ours)
    both[:skip] = False
    assert both.sum() > 100
    np.testing.assert_allclose(ours[both], ref[both], rtol=RTOL, atol=1e-12)
    # After warm-up, no value is missing on our side where the reference has one.
    assert not (np.isnan(ours[skip:]) & ~np.isnan(ref[skip:])).any()


def test_every_catalog_entry_has_a_function():
    assert set(CATALOG) == set(REGISTRY)


def test_single_output_indicators_match_talib(df):
    high, low, close, volume = cols(df)
    assert_close(ind.sma(df, 20), talib.SMA(close, 20))
    assert_close(ind.ema(df, 20), talib.EMA(close, 20))  # both seed with the SMA of the first 20
    assert_close(ind.rsi(df, 14), talib.RSI(close, 14))
    assert_close(ind.atr(df, 14), talib.ATR(high, low, close, 14))
    assert_close(ind.williams_r(df, 14), talib.WILLR(high, low, close, 14))
    assert_close(ind.roc(df, 10), talib.ROC(close, 10))
    assert_close(ind.obv(df), talib.OBV(close, volume))
    assert_close(ind.cci(df, 20), talib.CCI(high, low, close, 20))


def test_first_values_appear_exactly_after_warm_up(df):
    assert ind.sma(df, 20).first_valid_index() == df.index[19]
    assert ind.ema(df, 20).first_valid_index() == df.index[19]
    assert ind.rsi(df, 14).first_valid_index() == df.index[14]
    assert ind.atr(df, 14).first_valid_index() == df.index[14]
    assert ind.adx(df, 14)["adx"].first_valid_index() == df.index[27]


def test_multi_output_indicators_match_talib(df):
    high, low, close, _ = cols(df)
    bands = ind.bollinger_bands(df, 20, 2.0)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    assert_close(bands["upper"], upper)
    assert_close(bands["middle"], middle)
    assert_close(bands["lower"], lower)
    stoch = ind.stochastic(df, 14, 3)
    # TA-Lib starts %K only where %D exists; the values agree wherever both have one.
    k, d = talib.STOCHF(high, low, close, 14, 3, 0)
    assert_close(stoch["k"], k)
    assert_close(stoch["d"], d)
    adx = ind.adx(df, 14)
    assert_close(adx["adx"], talib.ADX(high, low, close, 14))
    assert_close(adx["plus_di"], talib.PLUS_DI(high, low, close, 14))
    assert_close(adx["minus_di"], talib.MINUS_DI(high, low, close, 14))


def _reference_ema(values, period):
    """The issue's definition, written as a plain loop: SMA seed, then alpha = 2/(n+1)."""
    out = np.full(len(values), np.nan)
    start = np.flatnonzero(~np.isnan(values))[0]
    out[start + period - 1] = np.mean(values[start : start + period])
    alpha = 2.0 / (period + 1)
    for t in range(start + period, len(values)):
        out[t] = alpha * values[t] + (1 - alpha) * out[t - 1]
    return out


def test_macd_matches_its_definition_and_talib_after_warm_up(df):
    """TA-Lib seeds MACD's fast EMA later than a plain EMA(12) does, so values differ during the
    first bars; we check our definition exactly, and TA-Lib once that seeding has decayed."""
    close = df["close"].to_numpy()
    ours = ind.macd(df, 12, 26, 9)
    line = _reference_ema(close, 12) - _reference_ema(close, 26)
    signal = _reference_ema(line, 9)
    np.testing.assert_allclose(ours["macd"], line, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ours["signal"], signal, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ours["histogram"], line - signal, rtol=1e-9, atol=1e-15, equal_nan=True)
    macd, sig, hist = talib.MACD(close, 12, 26, 9)
    assert_close(ours["macd"], macd, skip=300)
    assert_close(ours["signal"], sig, skip=300)
    # The histogram is a small difference of two close numbers: compare it against the price scale.
    tail = slice(300, None)
    assert np.nanmax(np.abs(ours["histogram"].to_numpy()[tail] - hist[tail])) < 1e-9


def test_flat_windows_do_not_divide_by_zero():
    index = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC", name="timestamp")
    flat = pd.DataFrame({c: 1.0 for c in ("open", "high", "low", "close", "volume")}, index=index)
    assert (ind.rsi(flat).dropna() == 50.0).all()
    assert (ind.stochastic(flat)["k"].dropna() == 50.0).all()
    assert (ind.williams_r(flat).dropna() == -50.0).all()
    assert (ind.cci(flat).dropna() == 0.0).all()
    assert (ind.adx(flat)["adx"].dropna() == 0.0).all()


def test_compute_indicators_names_columns_by_id_and_output(df):
    out = compute_indicators(
        df,
        {
            "rsi_14": {"type": "rsi", "period": 14},
            "macd_12_26_9": {"type": "MACD", "fast_period": 12},
            "bb": {"type": "bbands", "multiplier": 2.5},
        },
    )
    assert list(out.columns) == [
        "rsi_14",
        "macd_12_26_9.macd",
        "macd_12_26_9.signal",
        "macd_12_26_9.histogram",
        "bb.upper",
        "bb.middle",
        "bb.lower",
    ]
    assert out.index.equals(df.index)
    assert (out.dtypes == "float64").all()
    expected_upper = ind.bollinger_bands(df, 20, 2.5)["upper"]
    np.testing.assert_array_equal(out["bb.upper"].to_numpy(), expected_upper.to_numpy())


def test_compute_indicators_rejects_bad_entries(df):
    with pytest.raises(ValidationError) as exc:
        compute_indicators(df, {"x": {"type": "rsi", "period": 0}})
    assert "x.period" in exc.value.message
    with pytest.raises(ValidationError):
        compute_indicators(df, {"x": {"type": "nope"}})


def test_source_parameter_selects_the_column(df):
    np.testing.assert_array_equal(
        ind.sma(df, 5, source="high").to_numpy()[4:], df["high"].rolling(5).mean().to_numpy()[4:]
    )
