"""The network's output classes (the original system's index map), free of torch."""

from __future__ import annotations

BUY, HOLD, SELL = 0, 1, 2
NUM_CLASSES = 3
CLASS_NAMES: tuple[str, str, str] = ("BUY", "HOLD", "SELL")
