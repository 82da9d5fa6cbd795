"""The chronological train/validation/test split, with a purge gap between the parts.

Rows are never shuffled across parts: training rows come first in time, then validation, then
test. A label on bar ``t`` reads up to ``lookahead`` bars ahead, so the last ``gap`` rows of the
training and validation parts are dropped; otherwise their labels would see the next part.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktrdr.errors import ValidationError
from ktrdr.strategy.schema import DataSplit


@dataclass(frozen=True)
class SplitRanges:
    """Half-open row ranges ``[start, stop)`` of each part."""

    train: range
    validation: range
    test: range

    def to_dict(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def chronological_split(n_rows: int, split: DataSplit, *, gap: int = 0) -> SplitRanges:
    """Cut ``n_rows`` rows in time order by the ``split`` fractions, leaving ``gap`` rows out after
    the training and validation parts."""
    if gap < 0:
        raise ValidationError(f"split gap must be >= 0, got {gap}")
    train_end = int(n_rows * split.train)
    validation_end = int(n_rows * (split.train + split.validation))
    if split.test == 0:
        validation_end = n_rows
    train = range(0, max(0, train_end - gap))
    validation = range(train_end, max(train_end, validation_end - (gap if split.test > 0 else 0)))
    test = range(validation_end, n_rows)
    if len(train) == 0 or len(validation) == 0 or (split.test > 0 and len(test) == 0):
        raise ValidationError(
            f"not enough rows to split: {n_rows} usable rows give "
            f"{len(train)} train / {len(validation)} validation / {len(test)} test "
            f"(purge gap {gap}); use a longer date range",
            details={"rows": n_rows, "gap": gap},
        )
    return SplitRanges(train=train, validation=validation, test=test)
