"""Per-feature standardisation fitted on the training rows only, saved as JSON in the model metadata."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.errors import ValidationError


class Normalizer:
    """(x - mean) / std per column; std 0 (a constant feature) is stored as 1 so it maps to 0.

    ``Normalizer.fit(train)`` (or ``Normalizer().fit(train)``) returns a fitted normalizer.
    """

    def __init__(
        self, columns: Sequence[str] = (), mean: Sequence[float] = (), std: Sequence[float] = ()
    ) -> None:
        if not (len(columns) == len(mean) == len(std)):
            raise ValueError("columns, mean and std must have the same length")
        self.columns = list(columns)
        self.mean = np.asarray(mean, dtype="float64")
        self.std = np.asarray(std, dtype="float64")

    @classmethod
    def fit(cls, train: pd.DataFrame) -> Normalizer:
        """Statistics of the given (training) rows, ignoring NaN warm-up rows."""
        values = train.to_numpy(dtype="float64", na_value=np.nan)
        if values.shape[0] == 0 or np.isnan(values).all(axis=0).any():
            raise ValidationError("cannot fit a normalizer: a feature has no values in the training rows")
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        std = np.where(std > 0, std, 1.0)
        return cls(list(map(str, train.columns)), mean.tolist(), std.tolist())

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Standardised copy of ``features`` (same columns, in the fitted order; NaN stays NaN)."""
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise ValidationError(
                f"features lack the normalizer's columns: {', '.join(missing)}", details={"missing": missing}
            )
        values = features[self.columns].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame((values - self.mean) / self.std, index=features.index, columns=self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        try:
            normalizer = cls(data["columns"], data["mean"], data["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"invalid normalizer data: {exc}") from None
        if not all(math.isfinite(s) and s > 0 for s in normalizer.std.tolist()):
            raise ValidationError("invalid normalizer data: every std must be a positive number")
        return normalizer
