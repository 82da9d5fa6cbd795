"""Importing an uploaded OHLCV CSV (stdlib only): parse, check every row, then write atomically.

Accepted input: a header with one time column (``timestamp``, ``date``, ``datetime`` or ``time``) and
``open, high, low, close, volume`` in any order, case-insensitive; ISO 8601 timestamps (dates, naive
times taken as UTC, or any offset, converted to UTC). The stored file is always the canonical format.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from ktrdr.data.catalog import DatasetInfo
from ktrdr.data.files import write_dataset
from ktrdr.data.rules import (
    COLUMNS,
    INCREASING_RULE,
    ROW_RULES,
    TIME_COLUMNS,
    format_row,
    format_timestamp,
    parse_timestamp,
    rule_violation,
)
from ktrdr.errors import DataValidationError
from ktrdr.names import validate_symbol, validate_timeframe

Row = tuple[dt.datetime, float, float, float, float, float]


def import_csv(
    data_dir: Path | str, symbol: str, timeframe: str, content: bytes, *, overwrite: bool = False
) -> DatasetInfo:
    """Validate ``content`` completely, then store it as ``{SYMBOL}_{timeframe}.csv``.

    DataValidationError names the line and the rule; ConflictError if the dataset exists and not
    ``overwrite``. Nothing is written unless every row is valid.
    """
    symbol, timeframe = validate_symbol(symbol), validate_timeframe(timeframe)
    rows = parse_csv(content)
    lines = (format_row(format_timestamp(r[0]), *r[1:]) for r in rows)
    return write_dataset(
        data_dir,
        symbol,
        timeframe,
        lines,
        rows=len(rows),
        start=rows[0][0],
        end=rows[-1][0],
        overwrite=overwrite,
    )


def parse_csv(content: bytes) -> list[Row]:
    """Parse and validate OHLCV CSV bytes into rows; raise DataValidationError on the first bad line."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"the file is not UTF-8 text (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise DataValidationError("the file is empty: expected a header line and data rows")
    time_idx, value_idx = _header_positions(header)
    width = len(header)

    rows: list[Row] = []
    previous: dt.datetime | None = None
    for line_no, cells in enumerate(reader, start=2):
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != width:
            raise DataValidationError(
                f"line {line_no}: expected {width} fields, found {len(cells)}",
                details={"line": line_no, "rule": "field_count"},
            )
        stamp_text = cells[time_idx].strip()
        try:
            stamp = parse_timestamp(stamp_text)
        except ValueError:
            raise DataValidationError(
                f"line {line_no}: invalid timestamp {stamp_text[:40]!r} (expected ISO 8601)",
                details={"line": line_no, "rule": "timestamp_format", "value": stamp_text[:40]},
            ) from None
        o, h, lo, c, v = (
            _number(cells[i], name, line_no) for name, i in zip(COLUMNS, value_idx, strict=True)
        )
        for rule in ROW_RULES:
            if not rule.check(o, h, lo, c, v):
                raise rule_violation(
                    rule,
                    where="line",
                    position=line_no,
                    timestamp=stamp_text,
                    values=dict(zip(COLUMNS, (o, h, lo, c, v), strict=True)),
                )
        if previous is not None and stamp <= previous:
            raise rule_violation(INCREASING_RULE, where="line", position=line_no, timestamp=stamp_text)
        previous = stamp
        rows.append((stamp, o, h, lo, c, v))
    if not rows:
        raise DataValidationError("the file has a header but no data rows")
    return rows


def _header_positions(header: list[str]) -> tuple[int, list[int]]:
    names = [cell.strip().lower() for cell in header]
    time_cols = [i for i, n in enumerate(names) if n in TIME_COLUMNS]
    if len(time_cols) != 1:
        raise DataValidationError(
            f"header must have exactly one time column ({' or '.join(TIME_COLUMNS)}), got {header!r}",
            details={"line": 1, "rule": "header", "header": header},
        )
    missing = [c for c in COLUMNS if c not in names]
    unknown = [h for h, n in zip(header, names, strict=True) if n not in COLUMNS and n not in TIME_COLUMNS]
    if missing or unknown or len(set(names)) != len(names):
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(repr(u) for u in unknown)}")
        if len(set(names)) != len(names):
            problems.append("duplicate column names")
        raise DataValidationError(
            f"header must be a time column plus open, high, low, close, volume: {'; '.join(problems)}",
            details={"line": 1, "rule": "header", "missing": missing, "unknown": unknown},
        )
    return time_cols[0], [names.index(c) for c in COLUMNS]


def _number(text: str, column: str, line_no: int) -> float:
    text = text.strip()
    if not text:
        return float("nan")  # reported by the "finite" rule with the row's context
    try:
        return float(text)
    except ValueError:
        raise DataValidationError(
            f"line {line_no}: column {column!r} value {text[:40]!r} is not a number",
            details={"line": line_no, "rule": "number", "column": column, "value": text[:40]},
        ) from None
