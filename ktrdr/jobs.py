"""Progress reporting and cooperative cancellation for long work (training, backtests).

Pure standard library, so the same primitives serve the compute code, the worker apps that run
it in a thread, and the backend that only relays progress.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """A snapshot of how far a piece of work has come (``percentage`` is 0..100)."""

    percentage: float = 0.0
    current_step: str = ""
    steps_completed: int = 0
    steps_total: int = 0
    items_processed: int = 0
    items_total: int = 0
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[Progress], None]


class OperationCancelled(Exception):
    """Raised inside long work when its :class:`CancelToken` was cancelled."""


class CancelToken:
    """A thread-safe flag the caller sets and the work checks between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise OperationCancelled(self.reason or "cancelled")
