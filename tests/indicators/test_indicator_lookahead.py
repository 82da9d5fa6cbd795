"""No look-ahead: a value at bar t never changes when bars after t are appended or altered."""

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.data.sample import generate_ohlcv  # noqa: E402
from ktrdr.indicators import compute_indicators  # noqa: E402

ALL = {
    "sma": {"type": "sma", "period": 7},
    "ema": {"type": "ema", "period": 7},
    "rsi": {"type": "rsi", "period": 5},
    "macd": {"type": "macd", "fast": 3, "slow": 7, "signal": 4},
    "bb": {"type": "bollinger_bands", "period": 6},
    "atr": {"type": "atr", "period": 5},
    "stoch": {"type": "stochastic", "k_period": 5, "d_period": 3},
    "willr": {"type": "williams_r", "period": 5},
    "roc": {"type": "roc", "period": 4},
    "obv": {"type": "obv"},
    "cci": {"type": "cci", "period": 6},
    "adx": {"type": "adx", "period": 4},
}

BASE = generate_ohlcv(160, seed=21)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=20, max_value=150), seed=st.integers(min_value=0, max_value=10_000))
def test_future_bars_do_not_change_the_past(cut, seed):
    full = compute_indicators(BASE, ALL)
    truncated = compute_indicators(BASE.iloc[:cut], ALL)
    pd.testing.assert_frame_equal(full.iloc[:cut], truncated)

    # Replace every bar after the cut by different (still valid) bars.
    other = generate_ohlcv(len(BASE), seed=seed + 1000, base_price=float(BASE["close"].iloc[cut - 1]))
    altered = pd.concat([BASE.iloc[:cut], other.iloc[cut:].set_axis(BASE.index[cut:])])
    pd.testing.assert_frame_equal(compute_indicators(altered, ALL).iloc[:cut], truncated)
