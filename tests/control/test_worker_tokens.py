"""The backend presents its token on every call to a worker; during a rotation it falls back to the
previous token once; a worker that takes neither is skipped with an error in the log, never
half-dispatched."""

from __future__ import annotations

import structlog
from pydantic import SecretStr

from ktrdr.protocol import WorkerType
from tests.control.backend_fixtures import StartBackend, eventually, seed_dataset

AUTH = {"Authorization": "Bearer tok-new"}


async def test_every_call_to_a_worker_carries_the_token(start_backend: StartBackend) -> None:
    async with start_backend(api_token=SecretStr("tok-new")) as harness:
        seed_dataset(harness.settings.data_dir)
        worker = harness.pool.add(WorkerType.TRAINING, tokens=("tok-new",))
        assert (
            await harness.client.post("/api/v1/workers/register", json=worker.registration(), headers=AUTH)
        ).status_code == 200
        started = await harness.client.post(
            "/api/v1/trainings/start", json={"strategy_name": "rsi_macd_trend"}, headers=AUTH
        )
        assert started.status_code == 200, started.text
        operation_id = started.json()["operation_id"]
        worker.progress(operation_id, 50.0)
        await harness.client.get(f"/api/v1/operations/{operation_id}")  # pulls progress from the worker
        cancelled = await harness.client.delete(f"/api/v1/operations/{operation_id}", headers=AUTH)
        assert cancelled.json()["data"]["status"] == "cancelled"

        async def polled() -> bool:
            return any(path == "/health" for _, path, _ in worker.authorizations)

        assert await eventually(polled)
    called = {(method, path) for method, path, _ in worker.authorizations}
    assert {("POST", "/training/start"), ("DELETE", f"/api/v1/operations/{operation_id}/cancel")} <= called
    assert ("GET", f"/api/v1/operations/{operation_id}") in called
    assert {presented for _, _, presented in worker.authorizations} == {"Bearer tok-new"}


async def test_a_worker_that_still_knows_only_the_previous_token_is_served_with_it(
    start_backend: StartBackend,
) -> None:
    async with start_backend(
        api_token=SecretStr("tok-new"), api_token_previous=SecretStr("tok-old")
    ) as harness:
        seed_dataset(harness.settings.data_dir)
        worker = harness.pool.add(WorkerType.TRAINING, tokens=("tok-old",))
        # The worker registers with its own (old) token: the backend still accepts it.
        registered = await harness.client.post(
            "/api/v1/workers/register",
            json=worker.registration(),
            headers={"Authorization": "Bearer tok-old"},
        )
        assert registered.status_code == 200
        started = await harness.client.post(
            "/api/v1/trainings/start", json={"strategy_name": "rsi_macd_trend"}, headers=AUTH
        )
        assert started.status_code == 200, started.text
    starts = [presented for method, path, presented in worker.authorizations if path == "/training/start"]
    assert starts == ["Bearer tok-new", "Bearer tok-old"]  # refused once, then the previous token


async def test_a_worker_with_another_token_is_skipped_and_nothing_is_created(
    start_backend: StartBackend,
) -> None:
    async with start_backend(api_token=SecretStr("tok-new")) as harness:
        seed_dataset(harness.settings.data_dir)
        worker = harness.pool.add(WorkerType.TRAINING, tokens=("tok-elsewhere",))
        await harness.client.post("/api/v1/workers/register", json=worker.registration(), headers=AUTH)
        with structlog.testing.capture_logs() as logs:
            answer = await harness.client.post(
                "/api/v1/trainings/start", json={"strategy_name": "rsi_macd_trend"}, headers=AUTH
            )
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "NO_WORKER_AVAILABLE"
        assert await harness.rows() == 0
    refused = [e for e in logs if e["event"] == "dispatch.worker_refused_token"]
    assert [(e["worker_id"], e["log_level"]) for e in refused] == [(worker.worker_id, "error")]
