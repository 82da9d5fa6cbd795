"""The dataset catalog: what is in a data directory, read cheaply and without numpy/pandas.

Metadata (rows, first and last timestamp) comes from a small sidecar JSON written when a dataset is
saved (``.meta/{SYMBOL}_{timeframe}.json``), trusted only while the CSV's size and mtime match it.
Otherwise the CSV is scanned: its first and last lines plus a newline count, never a full parse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from pydantic import BaseModel

from ktrdr.data.names import dataset_filename, parse_dataset_filename
from ktrdr.data.rules import format_timestamp, parse_timestamp
from ktrdr.errors import DataNotFoundError, DataValidationError
from ktrdr.names import validate_symbol, validate_timeframe

META_DIR = ".meta"
_CHUNK = 1 << 20


class DatasetInfo(BaseModel):
    symbol: str
    timeframe: str
    rows: int
    start: dt.datetime | None
    end: dt.datetime | None
    size_bytes: int


def dataset_path(data_dir: Path | str, symbol: str, timeframe: str) -> Path:
    return Path(data_dir) / dataset_filename(symbol, timeframe)


def list_datasets(data_dir: Path | str) -> list[DatasetInfo]:
    """Every ``{SYMBOL}_{timeframe}.csv`` in ``data_dir``, sorted by symbol then timeframe."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    found: list[DatasetInfo] = []
    for entry in sorted(root.iterdir()):
        parsed = parse_dataset_filename(entry.name)
        if parsed is None or not entry.is_file():
            continue
        try:
            found.append(_read_info(entry, *parsed))
        except DataValidationError:
            continue  # unreadable stray file: not a dataset we can describe
    return found


def dataset_info(data_dir: Path | str, symbol: str, timeframe: str) -> DatasetInfo:
    """Metadata of one dataset; DataNotFoundError if it does not exist."""
    symbol, timeframe = validate_symbol(symbol), validate_timeframe(timeframe)
    path = dataset_path(data_dir, symbol, timeframe)
    if not path.is_file():
        raise DataNotFoundError(
            f"no data for {symbol} {timeframe} in {data_dir}",
            details={"symbol": symbol, "timeframe": timeframe},
        )
    return _read_info(path, symbol, timeframe)


def write_sidecar(info: DatasetInfo, csv_path: Path) -> None:
    """Record ``info`` next to the CSV (called right after an atomic save)."""
    stat = csv_path.stat()
    meta_dir = csv_path.parent / META_DIR
    meta_dir.mkdir(exist_ok=True)
    payload = {
        "rows": info.rows,
        "start": format_timestamp(info.start) if info.start else None,
        "end": format_timestamp(info.end) if info.end else None,
        "size_bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    target = meta_dir / (csv_path.stem + ".json")
    tmp = target.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, target)


def _read_info(path: Path, symbol: str, timeframe: str) -> DatasetInfo:
    stat = path.stat()
    sidecar = path.parent / META_DIR / (path.stem + ".json")
    try:
        meta = json.loads(sidecar.read_text())
        if meta["size_bytes"] == stat.st_size and meta["mtime_ns"] == stat.st_mtime_ns:
            return DatasetInfo(
                symbol=symbol,
                timeframe=timeframe,
                rows=meta["rows"],
                start=parse_timestamp(meta["start"]) if meta["start"] else None,
                end=parse_timestamp(meta["end"]) if meta["end"] else None,
                size_bytes=stat.st_size,
            )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rows, first, last = _scan(path)
    return DatasetInfo(
        symbol=symbol, timeframe=timeframe, rows=rows, start=first, end=last, size_bytes=stat.st_size
    )


def _scan(path: Path) -> tuple[int, dt.datetime | None, dt.datetime | None]:
    """(data rows, first timestamp, last timestamp) from the head, the tail and a newline count."""
    with path.open("rb") as f:
        head = f.read(_CHUNK)
        newlines = head.count(b"\n")
        while chunk := f.read(_CHUNK):
            newlines += chunk.count(b"\n")
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read()
    if size == 0:
        return 0, None, None
    lines_total = newlines + (0 if tail.endswith(b"\n") else 1)
    head_lines = [ln for ln in head.split(b"\n", 2)[:2] if ln.strip()]
    tail_lines = [ln for ln in tail.split(b"\n") if ln.strip()]
    rows = lines_total - 1
    if rows <= 0 or len(head_lines) < 2:
        return 0, None, None
    try:
        first = parse_timestamp(head_lines[1].split(b",", 1)[0].decode())
        last = parse_timestamp(tail_lines[-1].split(b",", 1)[0].decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path.name}: unreadable timestamp ({exc})") from exc
    return rows, first, last
