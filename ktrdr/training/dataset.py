"""A strategy's training set: normalised features and zigzag labels, split in time order.

Rows whose features are still warming up (NaN) or whose label is unknown (the last bars) are
dropped; the remaining rows are split chronologically with a purge gap of ``lookahead`` rows, and
the normaliser is fitted on the training rows only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.data.store import load_ohlcv
from ktrdr.errors import ValidationError
from ktrdr.features import Normalizer, build_features, feature_names
from ktrdr.neural.classes import NUM_CLASSES
from ktrdr.strategy.schema import StrategyConfig
from ktrdr.training.labels import UNLABELLED, zigzag_labels
from ktrdr.training.split import SplitRanges, chronological_split


@dataclass(frozen=True)
class Dataset:
    feature_names: list[str]
    features: np.ndarray  # float32, normalised, usable rows only
    labels: np.ndarray  # int64
    split: SplitRanges
    normalization: dict[str, Any]
    majority_class: int  # the training split's most frequent label (the class-prior baseline)
    first_timestamp: str
    last_timestamp: str
    test_start: str | None  # first bar of the test split: where an out-of-sample backtest begins

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        rows: range = getattr(self.split, name)
        return self.features[rows.start : rows.stop], self.labels[rows.start : rows.stop]

    def sizes(self) -> dict[str, int]:
        return self.split.to_dict()


def prepare_dataset(
    strategy: StrategyConfig,
    *,
    data_dir: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Dataset:
    """Load the strategy's data and turn it into a :class:`Dataset`."""
    ohlcv = load_ohlcv(data_dir, strategy.training_data.symbol, strategy.training_data.timeframe, start, end)
    return dataset_from_ohlcv(strategy, ohlcv)


def dataset_from_ohlcv(strategy: StrategyConfig, ohlcv: pd.DataFrame) -> Dataset:
    labels_cfg = strategy.training.labels
    names = feature_names(strategy)
    frame = build_features(strategy, ohlcv)[names]
    labels = zigzag_labels(ohlcv["close"].to_numpy(), labels_cfg.threshold, labels_cfg.lookahead)
    usable = np.isfinite(frame.to_numpy(dtype=np.float64)).all(axis=1) & (labels != UNLABELLED)
    rows = np.flatnonzero(usable)
    if rows.size == 0:
        raise ValidationError(
            f"no usable rows: {len(ohlcv)} bars are all indicator warm-up or unlabelled",
            details={"bars": len(ohlcv)},
        )
    split = chronological_split(rows.size, strategy.training.data_split, gap=labels_cfg.lookahead)
    usable_frame = frame.iloc[rows]
    train_frame = usable_frame.iloc[split.train.start : split.train.stop]
    normalizer = Normalizer().fit(train_frame)
    features = np.asarray(normalizer.transform(usable_frame), dtype=np.float32)
    y = labels[rows].astype(np.int64)
    train_counts = np.bincount(y[split.train.start : split.train.stop], minlength=NUM_CLASSES)
    return Dataset(
        feature_names=names,
        features=features,
        labels=y,
        split=split,
        normalization=normalizer.to_dict(),
        majority_class=int(np.argmax(train_counts)),
        first_timestamp=ohlcv.index[rows[0]].isoformat(),
        last_timestamp=ohlcv.index[rows[-1]].isoformat(),
        test_start=ohlcv.index[rows[split.test.start]].isoformat() if len(split.test) else None,
    )
