"""The neural network of a strategy: a small torch MLP over the feature vector.

:mod:`ktrdr.neural.mlp` is the module that imports torch at module level; only worker code
imports it. The class index map lives in the torch-free :mod:`ktrdr.neural.classes`, so labels
and decision rules can share it without loading torch; ``build_mlp`` and ``predict_proba`` are
loaded from ``mlp`` on first access.
"""

from __future__ import annotations

from typing import Any

from ktrdr.neural.classes import BUY, CLASS_NAMES, HOLD, NUM_CLASSES, SELL

__all__ = ["BUY", "CLASS_NAMES", "HOLD", "NUM_CLASSES", "SELL", "build_mlp", "predict_proba"]


def __getattr__(name: str) -> Any:
    if name in ("build_mlp", "predict_proba"):
        from ktrdr.neural import mlp

        return getattr(mlp, name)
    raise AttributeError(f"module 'ktrdr.neural' has no attribute {name!r}")
