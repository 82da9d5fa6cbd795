import json

import pytest

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

from ktrdr.data.sample import generate_ohlcv  # noqa: E402
from ktrdr.errors import ValidationError  # noqa: E402
from ktrdr.features import Normalizer, build_features, feature_names  # noqa: E402
from ktrdr.features.builder import warmup_bars  # noqa: E402
from ktrdr.indicators import compute_indicators  # noqa: E402
from ktrdr.strategy.loader import get_strategy, list_strategies, parse_strategy  # noqa: E402

STRATEGY = parse_strategy(
    """
name: order_test
indicators:
  unused_sma: {type: sma, period: 500}
  rsi_14: {type: rsi, period: 14}
  macd_12_26_9: {type: macd}
fuzzy_sets:
  rsi:
    indicator: rsi_14
    low: [0, 0, 40]
    high: [60, 100, 100]
  hist:
    indicator: macd_12_26_9.histogram
    neg: {type: gaussian, parameters: [-0.001, 0.001]}
    pos: {type: gaussian, parameters: [0.001, 0.001]}
    zero: [-0.0005, 0, 0.0005]
nn_inputs:
  - fuzzy_set: hist
  - fuzzy_set: rsi
training_data: {symbol: EURUSD, timeframe: 1h}
"""
)


@pytest.fixture(scope="module")
def ohlcv():
    return generate_ohlcv(400, seed=3)


def test_columns_follow_nn_inputs_then_membership_order(ohlcv):
    names = ["hist_neg", "hist_pos", "hist_zero", "rsi_low", "rsi_high"]
    assert feature_names(STRATEGY) == names
    features = build_features(STRATEGY, ohlcv)
    assert list(features.columns) == names
    assert features.index.equals(ohlcv.index)
    assert (features.dtypes == "float64").all()


def test_values_are_the_memberships_of_the_named_indicator_outputs(ohlcv):
    features = build_features(STRATEGY, ohlcv)
    rsi = compute_indicators(ohlcv, {"r": {"type": "rsi", "period": 14}})["r"].to_numpy()
    expected_low = np.clip((40 - rsi) / 40, 0, 1)
    np.testing.assert_allclose(features["rsi_low"].to_numpy()[14:], expected_low[14:])


def test_warm_up_rows_are_nan_and_only_used_indicators_count(ohlcv):
    features = build_features(STRATEGY, ohlcv)
    # MACD(12, 26, 9): macd from bar 25, signal and histogram from bar 33. The unused SMA(500) would
    # make every row NaN if it were computed into the features.
    assert warmup_bars(features) == 33
    assert features.iloc[:33].isna().any(axis=1).all()
    assert features.iloc[33:].notna().all().all()


def test_bundled_strategies_build_features_on_the_sample_data(ohlcv):
    for summary in list_strategies(None):
        config, _ = get_strategy(summary.name)
        features = build_features(config, ohlcv)
        assert list(features.columns) == feature_names(config)
        usable = features.iloc[warmup_bars(features) :]
        assert len(usable) > 300
        assert ((usable >= 0) & (usable <= 1)).all().all()
        assert (usable.std() > 0).all(), "every membership varies on the sample data"


def test_normalizer_is_fitted_on_training_rows_only(ohlcv):
    features = build_features(STRATEGY, ohlcv)
    train, rest = features.iloc[:250], features.iloc[250:]
    fitted = Normalizer.fit(train)
    # Changing validation/test rows cannot change the statistics.
    altered = pd.concat([train, rest * 0 + 0.9])
    refit = Normalizer.fit(altered.iloc[:250])
    np.testing.assert_array_equal(fitted.mean, refit.mean)
    np.testing.assert_array_equal(fitted.std, refit.std)
    np.testing.assert_allclose(fitted.mean, train.mean().to_numpy())  # NaN warm-up rows ignored
    np.testing.assert_allclose(fitted.std, train.std(ddof=0).to_numpy())
    z = fitted.transform(train)
    np.testing.assert_allclose(z.mean().to_numpy(), 0, atol=1e-12)
    assert z.iloc[:33].isna().any(axis=1).all()


def test_normalizer_round_trips_through_json_and_checks_columns(ohlcv):
    features = build_features(STRATEGY, ohlcv)
    fitted = Normalizer().fit(features.iloc[:200])
    restored = Normalizer.from_dict(json.loads(json.dumps(fitted.to_dict())))
    pd.testing.assert_frame_equal(restored.transform(features), fitted.transform(features))
    # Columns are matched by name, not position.
    reordered = features[list(reversed(features.columns))]
    pd.testing.assert_frame_equal(restored.transform(reordered), fitted.transform(features))
    with pytest.raises(ValidationError):
        restored.transform(features.drop(columns="rsi_low"))
    with pytest.raises(ValidationError):
        Normalizer.from_dict({"columns": ["a"], "mean": [0.0]})
    with pytest.raises(ValidationError):
        Normalizer.from_dict({"columns": ["a"], "mean": [0.0], "std": [0.0]})


def test_constant_feature_maps_to_zero():
    index = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    frame = pd.DataFrame({"a": [1.0, 1.0, 1.0, 1.0], "b": [0.0, 1.0, 0.0, 1.0]}, index=index)
    z = Normalizer.fit(frame).transform(frame)
    assert (z["a"] == 0).all()
    np.testing.assert_allclose(z["b"], [-1, 1, -1, 1])
