"""Features never see the future: a bar's features are the same whatever bars come after it."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("pandas")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ktrdr.data.sample import generate_ohlcv  # noqa: E402
from ktrdr.features import build_features  # noqa: E402
from ktrdr.strategy.loader import get_strategy  # noqa: E402

BARS = generate_ohlcv(400, timeframe="1h", seed=3)
OTHER = generate_ohlcv(400, timeframe="1h", seed=99)
STRATEGIES = [get_strategy(name)[0] for name in ("rsi_macd_trend", "momentum_roc_stochastic")]


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=399), st.sampled_from(STRATEGIES))
def test_future_bars_do_not_change_earlier_features(cut: int, strategy) -> None:
    full = build_features(strategy, BARS).to_numpy()
    prefix = build_features(strategy, BARS.iloc[:cut]).to_numpy()
    np.testing.assert_array_equal(prefix, full[:cut])

    # Replace every bar from `cut` on with unrelated (rescaled) bars: rows before `cut` stay put.
    spliced = BARS.copy()
    spliced.iloc[cut:] = OTHER.iloc[cut:].to_numpy() * 1.3
    np.testing.assert_array_equal(build_features(strategy, spliced).to_numpy()[:cut], full[:cut])
