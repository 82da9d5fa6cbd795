"""The operation as the rest of the backend and the API see it (pydantic, independent of the tables)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from ktrdr.protocol import OperationStatus, OperationType, ProgressModel

ACTIVE_STATUSES = (OperationStatus.PENDING, OperationStatus.RUNNING)


def new_operation_id() -> str:
    """``op_`` followed by 32 hex digits."""
    return f"op_{uuid.uuid4().hex}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Operation(BaseModel):
    """One training or backtest: what was asked, where it runs, how far it is, how it ended."""

    operation_id: str
    operation_type: OperationType
    status: OperationStatus
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime
    worker_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    progress: ProgressModel = Field(default_factory=ProgressModel)
    result: dict[str, Any] | None = None
    error_message: str | None = None
