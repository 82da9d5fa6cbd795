"""The operations store and its migrations, on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr.control.migrations import current_revision, upgrade_database
from ktrdr.control.store import OperationStore
from ktrdr.control.tables import Base
from ktrdr.errors import BadRequestError, OperationNotFoundError
from ktrdr.protocol import OperationStatus, OperationType, ProgressModel, WorkerType
from tests.control.backend_fixtures import postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'ops.db'}"
        return
    with postgres_database() as url:
        yield url


def test_migrations_apply_idempotently_and_match_the_tables(db_url: str) -> None:
    upgrade_database(db_url)
    upgrade_database(db_url)
    assert current_revision(db_url) == "0002"

    async def columns() -> dict[str, set[str]]:
        from sqlalchemy import inspect

        store = OperationStore.from_url(db_url)
        try:
            async with store.engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: {
                        t: {col["name"] for col in inspect(c).get_columns(t)} for t in Base.metadata.tables
                    }
                )
        finally:
            await store.close()

    found = asyncio.run(columns())
    for name, table in Base.metadata.tables.items():
        assert found[name] == {c.name for c in table.columns}


def test_unsupported_database_url_is_refused() -> None:
    with pytest.raises(BadRequestError, match="unsupported database URL scheme"):
        upgrade_database("mysql://localhost/x")


async def test_store_round_trip_and_first_final_status_wins(db_url: str) -> None:
    await asyncio.to_thread(upgrade_database, db_url)
    store = OperationStore.from_url(db_url)
    try:
        created = await store.create(OperationType.TRAINING, {"strategy_name": "s", "symbol": "EURUSD"})
        assert created.status == OperationStatus.PENDING
        assert await store.mark_running(created.operation_id, "w1")
        assert await store.update_progress(
            created.operation_id, ProgressModel(percentage=50, current_step="half")
        )
        running = await store.get(created.operation_id)
        assert running.status == OperationStatus.RUNNING and running.worker_id == "w1"
        assert running.progress.percentage == 50 and running.params["symbol"] == "EURUSD"
        assert running.started_at is not None and running.started_at.tzinfo is not None

        assert await store.finish(created.operation_id, OperationStatus.COMPLETED, result={"sharpe": 1.5})
        assert not await store.finish(created.operation_id, OperationStatus.FAILED, error_message="late")
        assert not await store.update_progress(created.operation_id, ProgressModel(percentage=1))
        done = await store.get(created.operation_id)
        assert done.status == OperationStatus.COMPLETED and done.result == {"sharpe": 1.5}
        assert done.error_message is None and done.progress.percentage == 50

        other = await store.create(OperationType.BACKTESTING, {})
        ops, total = await store.list_operations(limit=10)
        assert total == 2 and [o.operation_id for o in ops] == [other.operation_id, created.operation_id]
        ops, total = await store.list_operations(status=OperationStatus.COMPLETED)
        assert total == 1 and ops[0].operation_id == created.operation_id
        ops, total = await store.list_operations(operation_type=OperationType.BACKTESTING, limit=1, offset=1)
        assert total == 1 and ops == []
        counts = await store.count_by_status()
        assert counts["completed"] == 1 and counts["pending"] == 1 and counts["failed"] == 0
        assert [o.operation_id for o in await store.active()] == [other.operation_id]

        await store.delete(other.operation_id)
        with pytest.raises(OperationNotFoundError):
            await store.get(other.operation_id)

        await store.save_worker("w1", WorkerType.TRAINING, "http://h:1", {"gpu": True}, running.created_at)
        await store.save_worker("w1", WorkerType.TRAINING, "http://h:2", {"gpu": True}, running.created_at)
        workers = await store.load_workers()
        assert [(w.worker_id, w.endpoint_url, w.capabilities) for w in workers] == [
            ("w1", "http://h:2", {"gpu": True})
        ]
        await store.delete_worker("w1")
        assert await store.load_workers() == []
        assert await store.ping()
    finally:
        await store.close()
