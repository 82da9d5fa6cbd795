"""The OHLCV file format and the validity rules, stated once for both the CSV importer and pandas.

Each rule's check is written with operators only (``>=``, ``&``, ``==``), so the same expression runs on
Python floats (one CSV row at a time, no numpy) and on numpy arrays (a whole DataFrame at once).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ktrdr.errors import DataValidationError

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
HEADER: tuple[str, ...] = ("timestamp", *COLUMNS)
TIME_COLUMNS: tuple[str, ...] = ("timestamp", "date", "datetime", "time")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Rule:
    code: str
    description: str
    check: Callable[[Any, Any, Any, Any, Any], Any]  # (open, high, low, close, volume) -> ok


def _finite(x: Any) -> Any:
    return (x == x) & (abs(x) != math.inf)  # False for NaN and ±inf, scalar or array


ROW_RULES: tuple[Rule, ...] = (
    Rule(
        "finite",
        "open, high, low, close and volume must be numbers (no NaN, infinity or empty value)",
        lambda o, h, lo, c, v: _finite(o) & _finite(h) & _finite(lo) & _finite(c) & _finite(v),
    ),
    Rule(
        "positive_price",
        "open, high, low and close must be > 0",
        lambda o, h, lo, c, v: (o > 0) & (h > 0) & (lo > 0) & (c > 0),
    ),
    Rule("volume_non_negative", "volume must be >= 0", lambda o, h, lo, c, v: v >= 0),
    Rule(
        "high_is_max",
        "high must be >= open, close and low",
        lambda o, h, lo, c, v: (h >= o) & (h >= c) & (h >= lo),
    ),
    Rule("low_is_min", "low must be <= open and close", lambda o, h, lo, c, v: (lo <= o) & (lo <= c)),
)

INCREASING_RULE = Rule(
    "increasing_timestamps",
    "timestamps must be strictly increasing (sorted, no duplicates)",
    lambda *_: True,
)


def rule_violation(
    rule: Rule,
    *,
    where: str,
    position: int,
    timestamp: str | None,
    values: dict[str, Any] | None = None,
    count: int = 1,
) -> DataValidationError:
    """The one error shape for a broken rule; ``where`` is ``"line"`` (a CSV file) or ``"row"`` (a frame)."""
    at = f"{where} {position}" + (f" ({timestamp})" if timestamp else "")
    more = f" ({count} {where}s break this rule)" if count > 1 else ""
    details: dict[str, Any] = {
        "rule": rule.code,
        where: position,
        "timestamp": timestamp,
        "violations": count,
    }
    if values is not None:
        details["values"] = {k: (None if _is_nan(v) else v) for k, v in values.items()}
    return DataValidationError(f"{at}: {rule.description}{more}", details=details)


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def parse_timestamp(text: str) -> dt.datetime:
    """ISO 8601 date or date-time → aware UTC datetime; naive values are taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def format_timestamp(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def format_row(timestamp: str, o: float, h: float, lo: float, c: float, v: float) -> str:
    """One CSV data line; floats in their shortest round-trip form so a load/save cycle is lossless."""
    return f"{timestamp},{o!r},{h!r},{lo!r},{c!r},{v!r}\n"


HEADER_LINE = ",".join(HEADER) + "\n"
