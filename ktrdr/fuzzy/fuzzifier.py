"""The fuzzifier: indicator columns in, one named membership column per fuzzy set member out."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ktrdr.errors import ValidationError
from ktrdr.fuzzy.membership import membership
from ktrdr.strategy.schema import FuzzySetGroup


def membership_column(fuzzy_set: str, member: str) -> str:
    """``{fuzzy_set}_{member}``, e.g. ``rsi_14_oversold`` (the feature naming of the original system)."""
    return f"{fuzzy_set}_{member}"


def fuzzify(indicators: pd.DataFrame, fuzzy_sets: Mapping[str, FuzzySetGroup]) -> pd.DataFrame:
    """Membership columns for every group in ``fuzzy_sets`` (in order), read from ``indicators``.

    Each group reads the indicator column its ``indicator`` names (``rsi_14`` or ``macd_12_26_9.signal``).
    """
    names = [membership_column(g, m) for g, group in fuzzy_sets.items() for m in group.sets]
    # One preallocated block (column-major, as pandas stores it): no per-column copies on 1M bars.
    out = np.empty((len(names), len(indicators)), dtype="float64")
    k = 0
    for group_id, group in fuzzy_sets.items():
        if group.indicator not in indicators.columns:
            raise ValidationError(
                f"fuzzy set {group_id!r} reads column {group.indicator!r}, which was not computed",
                details={"fuzzy_set": group_id, "available": list(indicators.columns)},
            )
        x = indicators[group.indicator].to_numpy(dtype="float64", na_value=float("nan"))
        for function in group.sets.values():
            out[k] = membership(function.type, x, function.parameters)
            k += 1
    return pd.DataFrame(out.T, index=indicators.index, columns=names, copy=False)
