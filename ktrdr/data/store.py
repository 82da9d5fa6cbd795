"""The OHLCV store with pandas: load a dataset as a DataFrame, validate one, save one atomically.

Frames have a UTC DatetimeIndex named ``timestamp`` and float64 columns open, high, low, close, volume.
The validity rules and their messages are those of ``ktrdr.data.rules`` (shared with the CSV importer).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr.data.catalog import DatasetInfo, dataset_path
from ktrdr.data.files import write_dataset
from ktrdr.data.rules import (
    COLUMNS,
    INCREASING_RULE,
    ROW_RULES,
    TIME_COLUMNS,
    TIMESTAMP_FORMAT,
    format_row,
    rule_violation,
)
from ktrdr.errors import DataNotFoundError, DataValidationError, InvalidDateRangeError
from ktrdr.names import validate_symbol, validate_timeframe

type TimeBound = dt.datetime | dt.date | str | pd.Timestamp | None


def load_ohlcv(
    data_dir: Path | str,
    symbol: str,
    timeframe: str,
    start: TimeBound = None,
    end: TimeBound = None,
) -> pd.DataFrame:
    """The dataset's bars with ``start <= timestamp < end`` (either bound optional; naive bounds are UTC).

    DataNotFoundError if the dataset does not exist; InvalidDateRangeError if ``end <= start``;
    DataValidationError if the file breaks a rule.
    """
    symbol, timeframe = validate_symbol(symbol), validate_timeframe(timeframe)
    start_ts, end_ts = _bound(start, "start"), _bound(end, "end")
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise InvalidDateRangeError(
            f"end {end_ts.isoformat()} must be after start {start_ts.isoformat()}",
            details={"start": start_ts.isoformat(), "end": end_ts.isoformat()},
        )
    path = dataset_path(data_dir, symbol, timeframe)
    if not path.is_file():
        raise DataNotFoundError(
            f"no data for {symbol} {timeframe} in {data_dir}",
            details={"symbol": symbol, "timeframe": timeframe},
        )
    df = read_ohlcv_csv(path)
    if start_ts is not None:
        df = df[df.index >= start_ts]
    if end_ts is not None:
        df = df[df.index < end_ts]
    return df


def read_ohlcv_csv(path: Path) -> pd.DataFrame:
    """Parse and validate one CSV file (first column: ``timestamp`` or ``date``...)."""
    try:
        raw = pd.read_csv(path, dtype={c: "float64" for c in COLUMNS})
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path.name}: cannot parse CSV ({exc})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_col = raw.columns[0]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if time_col not in TIME_COLUMNS or missing:
        raise DataValidationError(
            f"{path.name}: header must be a time column ({' or '.join(TIME_COLUMNS)}) followed by "
            f"open, high, low, close, volume; got {list(raw.columns)}"
        )
    try:
        index = pd.DatetimeIndex(pd.to_datetime(raw[time_col], utc=True, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"{path.name}: invalid timestamp ({exc})") from None
    df = pd.DataFrame({c: raw[c].to_numpy(dtype="float64") for c in COLUMNS}, index=index.rename("timestamp"))
    validate_ohlcv(df, where="line", first_position=2)
    return df


def validate_ohlcv(df: pd.DataFrame, *, where: str = "row", first_position: int = 0) -> None:
    """Raise DataValidationError for the first bar that breaks a rule (same rules as the CSV importer).

    Positions are reported 0-based by default (``row 3``); the file reader reports file lines.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"missing columns: {', '.join(missing)}", details={"missing": missing})
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataValidationError("the index must be a DatetimeIndex of bar timestamps")
    values = [df[c].to_numpy(dtype="float64", na_value=np.nan) for c in COLUMNS]
    stamps = df.index
    for rule in ROW_RULES:
        with np.errstate(invalid="ignore"):
            ok = np.asarray(rule.check(*values), dtype=bool)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            i = int(bad[0])
            raise rule_violation(
                rule,
                where=where,
                position=i + first_position,
                timestamp=_stamp(stamps[i]),
                values={c: float(v[i]) for c, v in zip(COLUMNS, values, strict=True)},
                count=len(bad),
            )
    if len(stamps) > 1:
        ns = stamps.asi8
        bad = np.flatnonzero(np.diff(ns) <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise rule_violation(
                INCREASING_RULE,
                where=where,
                position=i + first_position,
                timestamp=_stamp(stamps[i]),
                count=len(bad),
            )
    if stamps.hasnans:
        raise DataValidationError("timestamps must not be missing")


def save_ohlcv(df: pd.DataFrame, data_dir: Path | str, symbol: str, timeframe: str) -> DatasetInfo:
    """Validate ``df`` and write it as ``{SYMBOL}_{timeframe}.csv``, atomically replacing any old version."""
    symbol, timeframe = validate_symbol(symbol), validate_timeframe(timeframe)
    frame = normalise_frame(df)
    validate_ohlcv(frame)
    stamps = frame.index.strftime(TIMESTAMP_FORMAT).tolist()
    columns = [frame[c].tolist() for c in COLUMNS]
    lines = (format_row(ts, *vals) for ts, *vals in zip(stamps, *columns, strict=True))
    return write_dataset(
        data_dir,
        symbol,
        timeframe,
        lines,
        rows=len(frame),
        start=frame.index[0].to_pydatetime() if len(frame) else None,
        end=frame.index[-1].to_pydatetime() if len(frame) else None,
        overwrite=True,
    )


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The canonical shape: UTC index named ``timestamp``, float64 OHLCV columns in order."""
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataValidationError("the index must be a DatetimeIndex of bar timestamps")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"missing columns: {', '.join(missing)}", details={"missing": missing})
    index = df.index.tz_localize("UTC") if df.index.tz is None else df.index.tz_convert("UTC")
    out = pd.DataFrame({c: df[c].to_numpy(dtype="float64", na_value=np.nan) for c in COLUMNS}, index=index)
    out.index.name = "timestamp"
    return out


def _bound(value: TimeBound, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidDateRangeError(f"invalid {name} date {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _stamp(ts: pd.Timestamp) -> str | None:
    return None if pd.isna(ts) else ts.strftime(TIMESTAMP_FORMAT)
