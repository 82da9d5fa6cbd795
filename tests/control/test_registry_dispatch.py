"""Worker registration, selection and dispatch through the API, against fake workers."""

from __future__ import annotations

from ktrdr.protocol import OperationStatus, WorkerType
from tests.control.backend_fixtures import Harness, seed_dataset, seed_model

TRAIN = {"strategy_name": "rsi_macd_trend"}


async def test_registration_is_idempotent_and_listed_with_filters(backend: Harness) -> None:
    trainer = backend.pool.add(WorkerType.TRAINING, capabilities={"gpu": False})
    tester = backend.pool.add(WorkerType.BACKTESTING)
    first = await backend.register(trainer)
    again = await backend.register(trainer)
    await backend.register(tester)
    assert first.status_code == again.status_code == 200
    assert again.json()["registered_at"] == first.json()["registered_at"]
    assert again.json()["status"] == "available"

    everyone = (await backend.client.get("/api/v1/workers")).json()
    assert [w["worker_id"] for w in everyone] == sorted([trainer.worker_id, tester.worker_id])
    only_training = (await backend.client.get("/api/v1/workers", params={"worker_type": "training"})).json()
    assert [w["worker_id"] for w in only_training] == [trainer.worker_id]
    busy = (await backend.client.get("/api/v1/workers", params={"status": "busy"})).json()
    assert busy == []
    one = await backend.client.get(f"/api/v1/workers/{tester.worker_id}")
    assert one.json()["endpoint_url"] == tester.endpoint_url


async def test_unknown_worker_is_404_so_the_worker_registers_again(backend: Harness) -> None:
    response = await backend.client.get("/api/v1/workers/nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "WORKER_NOT_FOUND"


async def test_bad_registration_is_refused_and_registers_nothing(backend: Harness) -> None:
    worker = backend.pool.add(WorkerType.TRAINING)
    refusals = [
        ({"worker_type": "quantum"}, 422, "VALIDATION_ERROR"),
        ({"endpoint_url": "ftp://x"}, 422, "VALIDATION_ERROR"),
        ({"endpoint_url": "http://x\u0000y"}, 422, "VALIDATION_ERROR"),
        ({"worker_id": "../etc"}, 400, "INVALID_NAME"),
        ({"current_operation_id": "op\u0000"}, 400, "INVALID_NAME"),
    ]
    for override, status, code in refusals:
        response = await backend.register(worker, **override)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), override
    assert (await backend.client.get("/api/v1/workers")).json() == []


async def test_training_prefers_gpu_workers(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    cpu = backend.pool.add(WorkerType.TRAINING, worker_id="cpu-trainer", capabilities={"gpu": False})
    gpu = backend.pool.add(WorkerType.TRAINING, worker_id="gpu-trainer", capabilities={"gpu": True})
    await backend.register(cpu)
    await backend.register(gpu)
    response = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["worker_id"] == "gpu-trainer"
    assert body["operation_id"].startswith("op_") and len(body["operation_id"]) == 35
    assert body["symbol"] == "EURUSD" and body["timeframe"] == "1h"
    sent = gpu.starts[0]
    assert sent["operation_id"] == body["operation_id"]
    assert "training_data" in sent["strategy_yaml"]
    # the GPU worker is now busy: the next training goes to the CPU one
    second = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert second.json()["worker_id"] == "cpu-trainer"


async def test_backtests_rotate_least_recently_used(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    seed_model(backend.settings)
    a = backend.pool.add(WorkerType.BACKTESTING, worker_id="bt-a")
    b = backend.pool.add(WorkerType.BACKTESTING, worker_id="bt-b")
    await backend.register(a)
    await backend.register(b)
    chosen = []
    for _ in range(3):
        response = await backend.client.post("/api/v1/backtests/start", json=TRAIN)
        assert response.status_code == 200, response.text
        op_id = response.json()["operation_id"]
        chosen.append(response.json()["worker_id"])
        worker = a if chosen[-1] == "bt-a" else b
        report = worker.finish(op_id, OperationStatus.COMPLETED)
        patched = await backend.client.patch(
            f"/api/v1/operations/{op_id}/status", json=report.model_dump(mode="json")
        )
        assert patched.status_code == 200
    assert chosen == ["bt-a", "bt-b", "bt-a"]


async def test_busy_worker_is_skipped_for_the_next(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    busy = backend.pool.add(WorkerType.TRAINING, worker_id="t-busy", start_status=503)
    free = backend.pool.add(WorkerType.TRAINING, worker_id="t-free")
    await backend.register(busy)
    await backend.register(free)
    response = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert response.status_code == 200
    assert response.json()["worker_id"] == "t-free"
    assert await backend.rows() == 1


async def test_no_free_worker_is_503_and_leaves_no_operation(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    none_registered = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert none_registered.status_code == 503
    assert none_registered.json()["error"]["code"] == "NO_WORKER_AVAILABLE"
    assert "no training worker is registered" in none_registered.json()["error"]["message"]

    busy = backend.pool.add(WorkerType.TRAINING, start_status=503)
    await backend.register(busy)
    all_busy = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert all_busy.status_code == 503
    assert "busy or unreachable" in all_busy.json()["error"]["message"]
    assert await backend.rows() == 0


async def test_worker_refusing_the_request_is_502_and_the_operation_failed(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    picky = backend.pool.add(WorkerType.TRAINING, start_status=422)
    await backend.register(picky)
    response = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "WORKER_ERROR"
    op_id = response.json()["error"]["details"]["operation_id"]
    operation = (await backend.client.get(f"/api/v1/operations/{op_id}")).json()["data"]
    assert operation["status"] == "failed"
    assert "refused" in operation["error_message"]
