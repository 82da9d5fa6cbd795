"""Operations after dispatch: progress, reports, cancel, dead workers, restarts and re-registration."""

from __future__ import annotations

from typing import Any

import httpx

from ktrdr.protocol import OperationReport, OperationStatus, WorkerType
from tests.control.backend_fixtures import Harness, StartBackend, eventually, seed_dataset
from tests.control.fake_worker import FakeWorker

TRAIN = {"strategy_name": "rsi_macd_trend"}


async def _start_training(backend: Harness, **worker_kwargs: Any) -> tuple[FakeWorker, str]:
    seed_dataset(backend.settings.data_dir)
    worker = backend.pool.add(WorkerType.TRAINING, **worker_kwargs)
    await backend.register(worker)
    response = await backend.client.post("/api/v1/trainings/start", json=TRAIN)
    assert response.status_code == 200, response.text
    return worker, response.json()["operation_id"]


async def _push(backend: Harness, report: OperationReport) -> httpx.Response:
    path = f"/api/v1/operations/{report.operation_id}/status"
    return await backend.client.patch(path, json=report.model_dump(mode="json"))


async def _operation(backend: Harness, op_id: str) -> dict[str, Any]:
    response = await backend.client.get(f"/api/v1/operations/{op_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def test_progress_is_pulled_from_the_worker(backend: Harness) -> None:
    worker, op_id = await _start_training(backend)
    worker.progress(op_id, 42.0, "epoch 21/50")
    operation = await _operation(backend, op_id)
    assert operation["status"] == "running"
    assert operation["worker_id"] == worker.worker_id
    assert operation["progress"]["percentage"] == 42.0
    assert operation["progress"]["current_step"] == "epoch 21/50"
    assert operation["started_at"] is not None


async def test_final_report_settles_the_operation_and_frees_the_worker(backend: Harness) -> None:
    worker, op_id = await _start_training(backend)
    report = worker.finish(op_id, OperationStatus.COMPLETED, result={"model_path": "m/1h_v1"})
    response = await backend.client.patch(
        f"/api/v1/operations/{op_id}/status", json=report.model_dump(mode="json")
    )
    assert response.status_code == 200
    operation = await _operation(backend, op_id)
    assert operation["status"] == "completed"
    assert operation["result"] == {"model_path": "m/1h_v1"}
    assert operation["completed_at"] is not None
    info = (await backend.client.get(f"/api/v1/workers/{worker.worker_id}")).json()
    assert info["status"] == "available" and info["current_operation_id"] is None

    # the first final status wins; a later one changes nothing
    late = report.model_copy(update={"status": OperationStatus.FAILED, "error_message": "late"})
    again = await backend.client.patch(
        f"/api/v1/operations/{op_id}/status", json=late.model_dump(mode="json")
    )
    assert again.status_code == 200
    assert (await _operation(backend, op_id))["status"] == "completed"


async def test_report_for_another_or_unknown_operation_is_rejected(backend: Harness) -> None:
    worker, op_id = await _start_training(backend)
    report = worker.operations[op_id].model_dump(mode="json")
    mismatch = await backend.client.patch("/api/v1/operations/op_other/status", json=report)
    assert mismatch.status_code == 400
    unknown = await backend.client.patch(
        "/api/v1/operations/op_nope/status", json={**report, "operation_id": "op_nope"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "OPERATION_NOT_FOUND"


async def test_cancel_reaches_the_worker_and_a_finished_operation_cannot_be_cancelled(
    backend: Harness,
) -> None:
    worker, op_id = await _start_training(backend)
    response = await backend.client.delete(
        f"/api/v1/operations/{op_id}", params={"reason": "changed my mind"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "cancelled"
    assert worker.cancels == [op_id]
    again = await backend.client.delete(f"/api/v1/operations/{op_id}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"
    missing = await backend.client.delete("/api/v1/operations/op_missing")
    assert missing.status_code == 404


async def test_dead_worker_fails_its_operation_with_the_reason(backend: Harness) -> None:
    worker, op_id = await _start_training(backend)
    worker.alive = False

    async def failed() -> bool:
        return (await _operation(backend, op_id))["status"] == "failed"

    assert await eventually(failed)
    operation = await _operation(backend, op_id)
    assert operation["error_message"] == f"worker {worker.worker_id} stopped answering health checks"
    info = (await backend.client.get(f"/api/v1/workers/{worker.worker_id}")).json()
    assert info["status"] == "temporarily_unavailable"
    assert info["health_check_failures"] >= 3


async def test_worker_that_restarted_and_forgot_the_operation_fails_it(backend: Harness) -> None:
    worker, op_id = await _start_training(backend)
    worker.forget()

    async def failed() -> bool:
        return (await _operation(backend, op_id))["status"] == "failed"

    assert await eventually(failed)
    assert "does not know operation" in (await _operation(backend, op_id))["error_message"]


async def test_operation_finished_while_the_report_was_lost_is_settled_by_the_monitor(
    backend: Harness,
) -> None:
    worker, op_id = await _start_training(backend)
    worker.finish(op_id, OperationStatus.COMPLETED, result={"ok": True})

    async def completed() -> bool:
        return (await _operation(backend, op_id))["status"] == "completed"

    assert await eventually(completed)
    assert (await _operation(backend, op_id))["result"] == {"ok": True}


async def test_reregistration_settles_finished_and_forgotten_operations(start_backend: StartBackend) -> None:
    # A health interval far longer than the test: only the re-registration may settle the operations
    # (with the fixture's 50 ms interval, the health monitor sometimes noticed the loss first).
    async with start_backend(worker_health_check_interval=60.0) as backend:
        await _reregistration_settles(backend)


async def _reregistration_settles(backend: Harness) -> None:
    worker, first = await _start_training(backend)
    report = worker.finish(first, OperationStatus.COMPLETED, result={"n": 1})
    response = await backend.register(worker, completed_operations=[report.model_dump(mode="json")])
    assert response.status_code == 200
    assert (await _operation(backend, first))["status"] == "completed"

    second = (await backend.client.post("/api/v1/trainings/start", json=TRAIN)).json()["operation_id"]
    worker.forget()
    await backend.register(worker)
    operation = await _operation(backend, second)
    assert operation["status"] == "failed"
    assert "registered again without operation" in operation["error_message"]


async def test_a_finished_operation_registered_without_its_result_gets_it_from_the_worker(
    start_backend: StartBackend,
) -> None:
    """A worker leaves out results that do not fit its registration: the backend pulls the whole
    report from the worker, at once (the monitor's 60 s interval is no part of it)."""
    async with start_backend(worker_health_check_interval=60.0) as backend:
        worker, op_id = await _start_training(backend)
        report = worker.finish(op_id, OperationStatus.COMPLETED, result={"curves": [1, 2, 3]})
        slim = report.model_copy(update={"result": None}).model_dump(mode="json")
        assert (await backend.register(worker, completed_operations=[slim])).status_code == 200
        operation = await _operation(backend, op_id)
        assert (operation["status"], operation["result"]) == ("completed", {"curves": [1, 2, 3]})
        assert ("GET", f"/api/v1/operations/{op_id}") in {(m, p) for m, p, _ in worker.authorizations}


async def test_a_result_the_worker_cannot_give_yet_leaves_the_operation_to_reconciliation(
    start_backend: StartBackend,
) -> None:
    async with start_backend(worker_health_check_interval=60.0) as backend:
        worker, op_id = await _start_training(backend)
        report = worker.finish(op_id, OperationStatus.COMPLETED, result={"n": 1})
        slim = report.model_copy(update={"result": None}).model_dump(mode="json")
        worker.alive = False  # registered, but unreachable when the backend asks for the result
        assert (await backend.register(worker, completed_operations=[slim])).status_code == 200
        assert (await _operation(backend, op_id))["status"] == "running"  # neither settled empty nor failed


async def test_list_filters_and_paginates_newest_first(backend: Harness) -> None:
    _worker, first = await _start_training(backend)
    await backend.client.delete(f"/api/v1/operations/{first}")
    second = (await backend.client.post("/api/v1/trainings/start", json=TRAIN)).json()["operation_id"]
    everything = (await backend.client.get("/api/v1/operations")).json()
    assert [o["operation_id"] for o in everything["data"]] == [second, first]
    assert everything["total_count"] == 2 and everything["active_count"] == 1
    page = (await backend.client.get("/api/v1/operations", params={"limit": 1, "offset": 1})).json()
    assert [o["operation_id"] for o in page["data"]] == [first]
    cancelled = (await backend.client.get("/api/v1/operations", params={"status": "cancelled"})).json()
    assert [o["operation_id"] for o in cancelled["data"]] == [first]
    backtests = (
        await backend.client.get("/api/v1/operations", params={"operation_type": "backtesting"})
    ).json()
    assert backtests["data"] == [] and backtests["total_count"] == 0
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "sleeping"}):
        response = await backend.client.get("/api/v1/operations", params=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
