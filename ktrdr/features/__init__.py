"""Strategy → feature matrix: indicators, then fuzzy memberships, in the strategy's input order.

``feature_names`` is pure Python; ``build_features`` and ``Normalizer`` (numpy/pandas) load lazily.
"""

from __future__ import annotations

from typing import Any

from ktrdr.features.names import feature_names, feature_plan

__all__ = ["Normalizer", "build_features", "feature_names", "feature_plan"]


def __getattr__(name: str) -> Any:
    if name == "build_features":
        from ktrdr.features.builder import build_features

        return build_features
    if name == "Normalizer":
        from ktrdr.features.normalizer import Normalizer

        return Normalizer
    raise AttributeError(f"module 'ktrdr.features' has no attribute {name!r}")
