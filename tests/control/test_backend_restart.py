"""A backend restarted on the same database keeps its operations and reconciles the running ones."""

from __future__ import annotations

from ktrdr.protocol import OperationStatus, WorkerType
from tests.control.backend_fixtures import Harness, StartBackend, eventually, seed_dataset

TRAIN = {"strategy_name": "rsi_macd_trend"}


async def test_restart_keeps_operations_and_reconciles_with_live_and_dead_workers(
    start_backend: StartBackend,
) -> None:
    async with start_backend() as first:
        harness: Harness = first
        seed_dataset(harness.settings.data_dir)
        alive = harness.pool.add(WorkerType.TRAINING, worker_id="survivor")
        doomed = harness.pool.add(WorkerType.TRAINING, worker_id="doomed")
        finished_meanwhile = harness.pool.add(WorkerType.TRAINING, worker_id="finisher")
        for worker in (alive, doomed, finished_meanwhile):
            await harness.register(worker)
        ops = {}
        for _ in range(3):
            body = (await harness.client.post("/api/v1/trainings/start", json=TRAIN)).json()
            ops[body["worker_id"]] = body["operation_id"]
        done = (await harness.client.post("/api/v1/trainings/start", json=TRAIN)).status_code
        assert done == 503  # all three busy
        cancelled_id = ops["doomed"]

    # while the backend is down: one worker dies, one finishes its operation
    doomed.alive = False
    finished_meanwhile.finish(ops["finisher"], OperationStatus.COMPLETED, result={"ok": 1})

    async with start_backend() as second:
        harness = second
        listed = (await harness.client.get("/api/v1/operations")).json()
        assert listed["total_count"] == 3
        assert {w["worker_id"] for w in (await harness.client.get("/api/v1/workers")).json()} == {
            "survivor",
            "doomed",
            "finisher",
        }

        async def settled() -> bool:
            statuses = {}
            for wid, op_id in ops.items():
                data = (await harness.client.get(f"/api/v1/operations/{op_id}")).json()["data"]
                statuses[wid] = data["status"]
            return statuses == {"survivor": "running", "doomed": "failed", "finisher": "completed"}

        assert await eventually(settled)
        doomed_op = (await harness.client.get(f"/api/v1/operations/{cancelled_id}")).json()["data"]
        assert doomed_op["error_message"] == "worker doomed stopped answering health checks"
        survivor = (await harness.client.get("/api/v1/workers/survivor")).json()
        assert survivor["status"] == "busy" and survivor["current_operation_id"] == ops["survivor"]


async def test_operation_left_pending_by_a_crashed_backend_is_failed(start_backend: StartBackend) -> None:
    from ktrdr.control.store import OperationStore
    from ktrdr.protocol import OperationType

    async with start_backend() as first:
        db_url = first.settings.resolved_db_url
    store = OperationStore.from_url(db_url)
    orphan = await store.create(OperationType.BACKTESTING, {"strategy_name": "x"})
    await store.close()

    async with start_backend() as second:

        async def failed() -> bool:
            data = (await second.client.get(f"/api/v1/operations/{orphan.operation_id}")).json()["data"]
            return bool(data["status"] == "failed")

        assert await eventually(failed)
        data = (await second.client.get(f"/api/v1/operations/{orphan.operation_id}")).json()["data"]
        assert data["error_message"] == "the backend restarted before the operation was dispatched"
