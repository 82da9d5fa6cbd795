"""Strategy + OHLCV → the feature matrix the network reads.

Columns are ``feature_names(strategy)``: nn_inputs order x each fuzzy set's membership order. Rows are
the input bars. During an indicator's warm-up its memberships are NaN; those rows are kept (aligned
with the bars) and the consumer drops them: training uses only rows with no NaN, and the backtest
holds (makes no decision) on them. Nothing is forward- or back-filled, so no bar sees the future.
"""

from __future__ import annotations

import pandas as pd

from ktrdr.features.names import feature_names
from ktrdr.fuzzy.fuzzifier import fuzzify
from ktrdr.indicators.functions import compute_indicators
from ktrdr.strategy.schema import StrategyConfig


def build_features(strategy: StrategyConfig, ohlcv: pd.DataFrame) -> pd.DataFrame:
    """The ordered, named float64 feature columns for every bar of ``ohlcv`` (warm-up rows NaN)."""
    used = {strategy.fuzzy_sets[i.fuzzy_set].indicator_id for i in strategy.nn_inputs}
    indicators = compute_indicators(
        ohlcv, {ind_id: cfg for ind_id, cfg in strategy.indicators.items() if ind_id in used}
    )
    groups = {i.fuzzy_set: strategy.fuzzy_sets[i.fuzzy_set] for i in strategy.nn_inputs}
    memberships = fuzzify(indicators, groups)
    names = feature_names(strategy)
    return memberships if list(memberships.columns) == names else memberships[names]


def warmup_bars(features: pd.DataFrame) -> int:
    """How many leading rows have a NaN feature (the longest warm-up)."""
    complete = features.notna().all(axis=1).to_numpy()
    return int(complete.argmax()) if complete.any() else len(features)
