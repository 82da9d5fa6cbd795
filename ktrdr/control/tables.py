"""The SQLAlchemy tables of the backend's database: operations and registered workers.

The schema itself is created and evolved by the Alembic migrations in
:mod:`ktrdr.control.migrations`; these mapped classes must stay in step with them
(tests/control/test_operation_store.py compares the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class OperationRow(Base):
    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    operation_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_operations_status", "status"),
        Index("ix_operations_operation_type", "operation_type"),
        Index("ix_operations_worker_id", "worker_id"),
        Index("ix_operations_created_at", "created_at"),
    )


class WorkerRow(Base):
    """A registered worker, kept so that a restarted backend polls its workers at once."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    worker_type: Mapped[str] = mapped_column(String(32))
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Which token the worker registered with, as BearerTokens.fingerprint (never the token itself):
    # a restarted backend presents that token again, and no other (ktrdr.control.registry).
    token_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
