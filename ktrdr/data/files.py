"""Atomic dataset writes: a temp file in the same directory, then one rename, then the sidecar."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ktrdr.data.catalog import DatasetInfo, dataset_path, write_sidecar
from ktrdr.data.rules import HEADER_LINE
from ktrdr.errors import ConflictError
from ktrdr.names import validate_symbol, validate_timeframe


def write_dataset(
    data_dir: Path | str,
    symbol: str,
    timeframe: str,
    lines: Iterable[str],
    *,
    rows: int,
    start: dt.datetime | None,
    end: dt.datetime | None,
    overwrite: bool,
) -> DatasetInfo:
    """Write header + ``lines`` to ``{SYMBOL}_{timeframe}.csv`` so readers see the old file or the new one.

    Without ``overwrite`` the final step is a hard link, which fails if the target appeared meanwhile, so
    two concurrent imports of the same dataset cannot both win.
    """
    symbol, timeframe = validate_symbol(symbol), validate_timeframe(timeframe)
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = dataset_path(root, symbol, timeframe)
    if not overwrite and target.exists():
        raise _conflict(symbol, timeframe)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(HEADER_LINE)
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise _conflict(symbol, timeframe) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    info = DatasetInfo(
        symbol=symbol, timeframe=timeframe, rows=rows, start=start, end=end, size_bytes=target.stat().st_size
    )
    with contextlib.suppress(OSError):  # the sidecar is a cache: the catalog rescans without it
        write_sidecar(info, target)
    return info


def _conflict(symbol: str, timeframe: str) -> ConflictError:
    return ConflictError(
        f"dataset {symbol} {timeframe} already exists; pass overwrite to replace it",
        details={"symbol": symbol, "timeframe": timeframe},
    )
