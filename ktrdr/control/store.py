"""Persistence of operations and registered workers over SQLAlchemy's async engine.

One class, :class:`OperationStore`, owns every query. SQLite (the embedded default, WAL mode and
a busy timeout so readers never block the writer) and PostgreSQL (asyncpg) run the same code.
Terminal transitions are single conditional UPDATEs, so the first final status wins even when a
worker's report, a cancel and a health-check failure race.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from ktrdr.control.migrations import check_db_url
from ktrdr.control.models import ACTIVE_STATUSES, Operation, new_operation_id, utcnow
from ktrdr.control.tables import OperationRow, WorkerRow
from ktrdr.errors import OperationNotFoundError
from ktrdr.protocol import OperationStatus, OperationType, ProgressModel, WorkerType

SQLITE_BUSY_TIMEOUT_MS = 10_000
_ACTIVE = [s.value for s in ACTIVE_STATUSES]


def make_engine(db_url: str) -> AsyncEngine:
    """An async engine for ``db_url``; SQLite connections get WAL, a busy timeout and foreign keys."""
    check_db_url(db_url)
    if db_url.startswith("sqlite"):
        engine = create_async_engine(db_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(db_url, pool_pre_ping=True)


def _to_model(row: OperationRow) -> Operation:
    return Operation(
        operation_id=row.id,
        operation_type=OperationType(row.operation_type),
        status=OperationStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        worker_id=row.worker_id,
        params=row.params or {},
        progress=ProgressModel.model_validate(row.progress or {}),
        result=row.result,
        error_message=row.error_message,
    )


class StoredWorker:
    """A registered worker as persisted (identity and endpoint; health lives in memory)."""

    def __init__(self, row: WorkerRow) -> None:
        self.worker_id = row.worker_id
        self.worker_type = WorkerType(row.worker_type)
        self.endpoint_url = row.endpoint_url
        self.capabilities: dict[str, Any] = row.capabilities or {}
        self.registered_at = row.registered_at
        self.token_fingerprint = row.token_fingerprint


class OperationStore:
    """Every read and write of the ``operations`` and ``workers`` tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, db_url: str) -> OperationStore:
        return cls(make_engine(db_url))

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception:
            return False

    async def schema_revision(self) -> str | None:
        """The migration revision the database records (Alembic's ``alembic_version`` table), or
        None when it has none yet."""
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        except DBAPIError:  # no such table: a database never migrated
            return None
        return rows[0] if len(rows) == 1 else None

    # --- operations ------------------------------------------------------------------------------

    async def create(self, operation_type: OperationType, params: dict[str, Any]) -> Operation:
        now = utcnow()
        row = OperationRow(
            id=new_operation_id(),
            operation_type=operation_type.value,
            status=OperationStatus.PENDING.value,
            created_at=now,
            updated_at=now,
            params=params,
            progress=ProgressModel().model_dump(),
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _to_model(row)

    async def get(self, operation_id: str) -> Operation:
        async with self._sessions() as session:
            row = await session.get(OperationRow, operation_id)
        if row is None:
            raise OperationNotFoundError(
                f"operation {operation_id!r} not found", details={"operation_id": operation_id}
            )
        return _to_model(row)

    async def list_operations(
        self,
        *,
        status: OperationStatus | None = None,
        operation_type: OperationType | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Operation], int]:
        """Newest first, with the total count matching the filters (for pagination)."""
        conditions = []
        if status is not None:
            conditions.append(OperationRow.status == status.value)
        if operation_type is not None:
            conditions.append(OperationRow.operation_type == operation_type.value)
        query = (
            select(OperationRow)
            .where(*conditions)
            .order_by(OperationRow.created_at.desc(), OperationRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
            total = await session.scalar(select(func.count()).select_from(OperationRow).where(*conditions))
        return [_to_model(r) for r in rows], int(total or 0)

    async def count_by_status(self) -> dict[str, int]:
        query = select(OperationRow.status, func.count()).group_by(OperationRow.status)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        counts = {s.value: 0 for s in OperationStatus}
        counts.update({status: int(n) for status, n in rows})
        return counts

    async def active(self) -> list[Operation]:
        """Operations that are pending or running (what reconciliation looks at)."""
        query = select(OperationRow).where(OperationRow.status.in_(_ACTIVE)).order_by(OperationRow.created_at)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_to_model(r) for r in rows]

    async def mark_running(
        self, operation_id: str, worker_id: str, started_at: dt.datetime | None = None
    ) -> bool:
        """pending/running -> running on ``worker_id``; False when the operation is already final."""
        now = utcnow()
        values: dict[str, Any] = {"status": OperationStatus.RUNNING.value, "worker_id": worker_id}
        values["updated_at"] = now
        values["started_at"] = func.coalesce(OperationRow.started_at, started_at or now)
        return await self._update_active(operation_id, values)

    async def update_progress(self, operation_id: str, progress: ProgressModel) -> bool:
        values = {"progress": progress.model_dump(mode="json"), "updated_at": utcnow()}
        return await self._update_active(operation_id, values)

    async def finish(
        self,
        operation_id: str,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None = None,
        error_message: str | None = None,
        progress: ProgressModel | None = None,
        completed_at: dt.datetime | None = None,
    ) -> bool:
        """Move an active operation to a final status; False (and no change) when it already was final."""
        if not status.is_terminal:
            raise ValueError(f"{status} is not a final status")
        now = utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "completed_at": completed_at or now,
            "updated_at": now,
            "error_message": error_message,
        }
        if result is not None:
            values["result"] = result
        if progress is not None:
            values["progress"] = progress.model_dump(mode="json")
        return await self._update_active(operation_id, values)

    async def delete(self, operation_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(OperationRow).where(OperationRow.id == operation_id))

    async def _update_active(self, operation_id: str, values: dict[str, Any]) -> bool:
        statement = (
            update(OperationRow)
            .where(OperationRow.id == operation_id, OperationRow.status.in_(_ACTIVE))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- workers ---------------------------------------------------------------------------------

    async def save_worker(
        self,
        worker_id: str,
        worker_type: WorkerType,
        endpoint_url: str,
        capabilities: dict[str, Any],
        registered_at: dt.datetime,
        token_fingerprint: str | None = None,
    ) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(WorkerRow, worker_id)
            if row is None:
                row = WorkerRow(worker_id=worker_id, registered_at=registered_at)
                session.add(row)
            row.worker_type = worker_type.value
            row.endpoint_url = endpoint_url
            row.capabilities = capabilities
            row.token_fingerprint = token_fingerprint
            row.updated_at = utcnow()

    async def delete_worker(self, worker_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(WorkerRow).where(WorkerRow.worker_id == worker_id))

    async def load_workers(self) -> list[StoredWorker]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(WorkerRow).order_by(WorkerRow.registered_at))).all()
        return [StoredWorker(r) for r in rows]
