"""Technical indicators: a pure-Python catalog (``specs``) and vectorised numpy/pandas functions.

Importing this package or ``ktrdr.indicators.specs`` never imports numpy or pandas; the numeric names
(``sma``, ``compute_indicators``...) load ``ktrdr.indicators.functions`` on first access.
"""

from __future__ import annotations

from typing import Any

from ktrdr.indicators.specs import CATALOG, IndicatorSpec, check_indicator, find_spec, output_columns

_NUMERIC = {
    "sma",
    "ema",
    "rsi",
    "macd",
    "bollinger_bands",
    "atr",
    "stochastic",
    "williams_r",
    "roc",
    "obv",
    "cci",
    "adx",
    "REGISTRY",
    "compute_indicator",
    "compute_indicators",
}

__all__ = [
    "CATALOG",
    "IndicatorSpec",
    "check_indicator",
    "find_spec",
    "output_columns",
    *sorted(_NUMERIC),
]


def __getattr__(name: str) -> Any:
    if name in _NUMERIC:
        from ktrdr.indicators import functions

        return getattr(functions, name)
    raise AttributeError(f"module 'ktrdr.indicators' has no attribute {name!r}")
