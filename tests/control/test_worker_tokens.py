"""The backend presents to each worker the token that worker registered with, and no other.

So a worker endpoint registered by someone who holds only the previous token (during a rotation,
or after a leak) never receives the current one: not on a health poll, a start, a progress pull
or a cancel, and not after the backend restarts. The store keeps a fingerprint of that token,
never the token. A worker that takes none of our tokens is skipped, never half-dispatched.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog
from pydantic import SecretStr

from ktrdr.protocol import WorkerType
from tests.control.backend_fixtures import Harness, StartBackend, eventually, seed_dataset
from tests.control.fake_worker import FakeWorker

NEW, OLD = "tok-new-5f1e", "tok-old-0b7d"
ROTATING = {"api_token": SecretStr(NEW), "api_token_previous": SecretStr(OLD)}
TRAIN = {"strategy_name": "rsi_macd_trend"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(harness: Harness, worker: FakeWorker, token: str) -> None:
    answer = await harness.client.post(
        "/api/v1/workers/register", json=worker.registration(), headers=bearer(token)
    )
    assert answer.status_code == 200, answer.text


async def polled(worker: FakeWorker, times: int = 1) -> bool:
    async def enough() -> bool:
        return sum(path == "/health" for _, path, _ in worker.authorizations) >= times

    return await eventually(enough)


async def exercise(harness: Harness, worker: FakeWorker) -> str:
    """Start an operation on ``worker`` (the only free one), pull its progress, cancel it."""
    started = await harness.client.post("/api/v1/trainings/start", json=TRAIN, headers=bearer(NEW))
    assert started.status_code == 200, started.text
    assert started.json()["worker_id"] == worker.worker_id
    operation_id = str(started.json()["operation_id"])
    worker.progress(operation_id, 50.0)
    await harness.client.get(f"/api/v1/operations/{operation_id}")  # pulls progress from the worker
    cancelled = await harness.client.delete(f"/api/v1/operations/{operation_id}", headers=bearer(NEW))
    assert cancelled.json()["data"]["status"] == "cancelled"
    return operation_id


async def available(harness: Harness, worker: FakeWorker) -> bool:
    async def answered() -> bool:
        info = (await harness.client.get(f"/api/v1/workers/{worker.worker_id}")).json()
        return bool(info["status"] == "available")

    return await eventually(answered)


def every_kind_of_call(operation_id: str) -> set[tuple[str, str]]:
    """What :func:`exercise` and the monitor make the backend send a worker."""
    return {
        ("GET", "/health"),
        ("POST", "/training/start"),
        ("GET", f"/api/v1/operations/{operation_id}"),
        ("DELETE", f"/api/v1/operations/{operation_id}/cancel"),
    }


def presented(worker: FakeWorker) -> set[str | None]:
    return {authorization for _, _, authorization in worker.authorizations}


def calls(worker: FakeWorker) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _ in worker.authorizations}


async def test_every_call_to_a_worker_carries_the_token_it_registered_with(
    start_backend: StartBackend,
) -> None:
    async with start_backend(api_token=SecretStr(NEW)) as harness:
        seed_dataset(harness.settings.data_dir)
        worker = harness.pool.add(WorkerType.TRAINING, tokens=(NEW,))
        await register(harness, worker, NEW)
        operation_id = await exercise(harness, worker)
        assert await polled(worker)
    assert every_kind_of_call(operation_id) <= calls(worker)
    assert presented(worker) == {f"Bearer {NEW}"}


async def test_an_endpoint_registered_with_the_previous_token_never_receives_the_current_one(
    start_backend: StartBackend,
) -> None:
    async with start_backend(**ROTATING) as harness:
        seed_dataset(harness.settings.data_dir)
        # Whoever holds only the old token registers an endpoint of their choosing: it takes anything.
        chosen = harness.pool.add(WorkerType.TRAINING, worker_id="chosen-by-the-old-token")
        await register(harness, chosen, OLD)
        operation_id = await exercise(harness, chosen)
        honest = harness.pool.add(WorkerType.TRAINING, worker_id="honest", tokens=(NEW,))
        await register(harness, honest, NEW)
        await exercise(harness, honest)
        assert await polled(chosen, 3) and await polled(honest, 3)
    assert every_kind_of_call(operation_id) <= calls(chosen)
    assert presented(chosen) == {f"Bearer {OLD}"}
    assert presented(honest) == {f"Bearer {NEW}"}


async def test_after_a_restart_each_worker_is_called_with_the_token_it_registered_with(
    start_backend: StartBackend,
) -> None:
    async with start_backend(**ROTATING) as first:
        seed_dataset(first.settings.data_dir)
        chosen = first.pool.add(WorkerType.TRAINING, worker_id="chosen-by-the-old-token")
        honest = first.pool.add(WorkerType.BACKTESTING, worker_id="honest", tokens=(NEW,))
        await register(first, chosen, OLD)
        await register(first, honest, NEW)
    chosen.authorizations.clear()
    honest.authorizations.clear()
    async with start_backend(**ROTATING) as second:
        assert await available(second, chosen)  # taken over from the store, then polled
        await exercise(second, chosen)
        assert await polled(chosen, 3) and await polled(honest, 3)
    assert presented(chosen) == {f"Bearer {OLD}"}
    assert presented(honest) == {f"Bearer {NEW}"}


async def test_after_a_cut_over_a_worker_registered_with_the_old_token_is_not_called_until_it_registers_again(
    start_backend: StartBackend,
) -> None:
    async with start_backend(api_token=SecretStr(OLD)) as first:
        seed_dataset(first.settings.data_dir)
        chosen = first.pool.add(WorkerType.TRAINING, worker_id="chosen-by-the-old-token")
        moving = first.pool.add(WorkerType.TRAINING, worker_id="moving-to-the-new-token")
        await register(first, chosen, OLD)
        await register(first, moving, OLD)
    chosen.authorizations.clear()
    moving.authorizations.clear()
    with structlog.testing.capture_logs() as logs:
        async with start_backend(api_token=SecretStr(NEW)) as second:
            # The worker that moved to the new token registers again with it (as a worker whose
            # polls stop does); the one that holds only the old token cannot.
            bystander = second.pool.add(WorkerType.BACKTESTING, tokens=(NEW,))
            await register(second, bystander, NEW)
            assert await polled(bystander, 3)
            assert chosen.authorizations == [] and moving.authorizations == []
            status = (await second.client.get(f"/api/v1/workers/{chosen.worker_id}")).json()["status"]
            assert status == "temporarily_unavailable"
            await register(second, moving, NEW)
            await exercise(second, moving)
            assert await polled(moving)
    assert chosen.authorizations == []
    assert presented(moving) == {f"Bearer {NEW}"}
    refused = [e for e in logs if e["event"] == "registry.worker_token_not_accepted"]
    assert [sorted(e["workers"]) for e in refused] == [[chosen.worker_id, moving.worker_id]]


async def test_the_store_keeps_a_fingerprint_of_the_token_never_the_token(
    start_backend: StartBackend,
) -> None:
    async with start_backend(**ROTATING) as harness:
        for worker_id, token in (("with-new", NEW), ("with-old", OLD)):
            await register(harness, harness.pool.add(WorkerType.TRAINING, worker_id=worker_id), token)
        database = Path(harness.settings.resolved_db_url.removeprefix("sqlite+aiosqlite:///"))
    with sqlite3.connect(database) as conn:
        rows = dict(conn.execute("SELECT worker_id, token_fingerprint FROM workers").fetchall())
    assert rows["with-new"] and rows["with-old"] and rows["with-new"] != rows["with-old"]
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert NEW.encode() not in stored and OLD.encode() not in stored


async def test_a_worker_with_another_token_is_skipped_and_nothing_is_created(
    start_backend: StartBackend,
) -> None:
    async with start_backend(api_token=SecretStr(NEW)) as harness:
        seed_dataset(harness.settings.data_dir)
        worker = harness.pool.add(WorkerType.TRAINING, tokens=("tok-elsewhere",))
        await register(harness, worker, NEW)
        with structlog.testing.capture_logs() as logs:
            answer = await harness.client.post("/api/v1/trainings/start", json=TRAIN, headers=bearer(NEW))
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "NO_WORKER_AVAILABLE"
        assert await harness.rows() == 0
    refused = [e for e in logs if e["event"] == "dispatch.worker_refused_token"]
    assert [(e["worker_id"], e["log_level"]) for e in refused] == [(worker.worker_id, "error")]
