"""Symbol and timeframe names: the only strings that ever become part of a data file path."""

from __future__ import annotations

import re

from ktrdr.errors import InvalidNameError

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")

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

SYMBOL_MAX_LENGTH = 32
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")


def validate_symbol(symbol: str) -> str:
    """Return the symbol in upper case; raise InvalidNameError unless it is 1-32 of ``A-Z 0-9 _ -``."""
    if not isinstance(symbol, str):
        raise InvalidNameError(f"symbol must be a string, got {type(symbol).__name__}")
    normalised = symbol.strip().upper()
    if not _SYMBOL_RE.fullmatch(normalised):
        raise InvalidNameError(
            f"invalid symbol {symbol[:64]!r}: use 1-{SYMBOL_MAX_LENGTH} letters, digits, '_' or '-', "
            "starting with a letter or digit",
            details={"symbol": symbol[:64]},
        )
    return normalised


def validate_timeframe(timeframe: str) -> str:
    """Return the timeframe if it is one of 1m 5m 15m 30m 1h 4h 1d 1w; raise InvalidNameError otherwise."""
    if not isinstance(timeframe, str) or timeframe not in TIMEFRAMES:
        shown = timeframe[:64] if isinstance(timeframe, str) else type(timeframe).__name__
        raise InvalidNameError(
            f"invalid timeframe {shown!r}: expected one of {', '.join(TIMEFRAMES)}",
            details={"timeframe": shown, "allowed": list(TIMEFRAMES)},
        )
    return timeframe


def dataset_filename(symbol: str, timeframe: str) -> str:
    """``{SYMBOL}_{timeframe}.csv`` after validating both names."""
    return f"{validate_symbol(symbol)}_{validate_timeframe(timeframe)}.csv"


def parse_dataset_filename(filename: str) -> tuple[str, str] | None:
    """The (symbol, timeframe) a store file name encodes, or None if it is not a dataset file."""
    if not filename.endswith(".csv"):
        return None
    stem = filename[: -len(".csv")]
    symbol, sep, timeframe = stem.rpartition("_")
    if not sep or timeframe not in TIMEFRAMES or not _SYMBOL_RE.fullmatch(symbol):
        return None
    return symbol, timeframe
