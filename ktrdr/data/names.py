"""Dataset file names: ``{SYMBOL}_{timeframe}.csv``, built only from names ktrdr.names accepts."""

from __future__ import annotations

from ktrdr.names import SYMBOL, TIMEFRAMES, is_name, validate_symbol, validate_timeframe

# Seconds per bar, for annualisation and for checking bar spacing.
TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
    "1w": 604800,
}


def dataset_filename(symbol: str, timeframe: str) -> str:
    """``{SYMBOL}_{timeframe}.csv`` after validating both names."""
    return f"{validate_symbol(symbol)}_{validate_timeframe(timeframe)}.csv"


def parse_dataset_filename(filename: str) -> tuple[str, str] | None:
    """The (symbol, timeframe) a store file name encodes, or None if it is not a dataset file."""
    if not filename.endswith(".csv"):
        return None
    stem = filename[: -len(".csv")]
    symbol, sep, timeframe = stem.rpartition("_")
    # A name the symbol rule accepts (ASCII), already in the upper case the store writes.
    if not sep or timeframe not in TIMEFRAMES or not is_name(symbol, SYMBOL) or symbol != symbol.upper():
        return None
    return symbol, timeframe
