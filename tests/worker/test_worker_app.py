"""The worker base app: endpoints, one operation at a time, progress, cancel, failure, final reports."""

from __future__ import annotations

from worker_harness import FakeBackend, wait_until

from ktrdr.protocol import OperationReport


def test_root_and_idle_health(make_worker):
    w = make_worker()
    with w.client as client:
        root = client.get("/").json()
        assert root["service"] == "training-worker"
        assert root["worker_id"] == "training-test-abc123"
        health = client.get("/health").json()
        assert health["healthy"] is True
        assert health["worker_status"] == "idle"
        assert health["current_operation"] is None
        assert health["worker_type"] == "training"


def test_a_trailing_slash_redirects_to_the_operation_list(make_worker):
    w = make_worker()
    with w.client as client:
        answer = client.get("/api/v1/operations/", follow_redirects=False)
        assert answer.status_code == 307, answer.text
        assert client.get("/api/v1/operations/").json() == []


def test_registers_with_identity_capabilities_and_endpoint(make_worker):
    w = make_worker()
    with w.client:
        wait_until(lambda: w.backend.bodies("POST", "/register"))
    reg = w.backend.bodies("POST", "/register")[0]
    assert reg["worker_id"] == "training-test-abc123"
    assert reg["worker_type"] == "training"
    assert reg["endpoint_url"] == "http://127.0.0.1:5999"
    assert reg["capabilities"] == {"gpu": False, "device": "cpu"}


def test_operation_runs_reports_progress_and_completes(make_worker):
    w = make_worker()
    with w.client as client:
        assert client.post("/training/start", json={"operation_id": "op_1"}).json()["operation_id"] == "op_1"
        assert w.compute.started.wait(10)

        health = client.get("/health").json()
        assert (health["worker_status"], health["current_operation"]) == ("busy", "op_1")
        running = client.get("/api/v1/operations/op_1").json()
        assert running["status"] == "running"
        assert running["progress"]["percentage"] == 40.0
        assert running["progress"]["current_step"] == "epoch 2/5"

        busy = client.post("/training/start", json={"operation_id": "op_2"})
        assert busy.status_code == 503
        assert busy.json()["success"] is False
        assert "busy with operation op_1" in busy.json()["error"]["message"]

        w.compute.release.set()
        wait_until(lambda: client.get("/api/v1/operations/op_1").json()["status"] == "completed")
        done = client.get("/api/v1/operations/op_1").json()
        assert done["result"] == {"model_path": "m/1h_v1", "sharpe_ratio": 1.25}
        assert done["progress"]["percentage"] == 100.0
        assert client.get("/health").json()["worker_status"] == "idle"
        assert [r["operation_id"] for r in client.get("/api/v1/operations").json()] == ["op_1"]
        wait_until(lambda: w.backend.bodies("PATCH", "/operations/op_1/status"))
    report = w.backend.bodies("PATCH", "/operations/op_1/status")[0]
    assert report["status"] == "completed"
    assert report["result"]["sharpe_ratio"] == 1.25


def test_repeated_start_of_the_same_operation_is_idempotent(make_worker):
    w = make_worker()
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_1"})
        again = client.post("/training/start", json={"operation_id": "op_1"})
        assert again.status_code == 200
        assert again.json()["operation_id"] == "op_1"
        w.compute.release.set()


def test_cancel_stops_the_compute_and_reports_cancelled(make_worker):
    w = make_worker()
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_c"})
        assert w.compute.started.wait(10)
        answer = client.delete("/api/v1/operations/op_c/cancel", params={"reason": "user changed mind"})
        assert answer.status_code == 200
        assert answer.json()["status"] == "cancelled"
        assert answer.json()["error_message"] == "user changed mind"
        assert client.get("/health").json()["worker_status"] == "idle"
        # cancelling a finished operation leaves it as it is
        assert client.delete("/api/v1/operations/op_c/cancel").json()["status"] == "cancelled"
        wait_until(lambda: w.backend.bodies("PATCH", "/operations/op_c/status"))
    assert w.backend.bodies("PATCH", "/operations/op_c/status")[0]["status"] == "cancelled"


def test_compute_error_fails_the_operation_with_its_message(make_worker):
    w = make_worker()
    w.compute.error = ValueError("no data for EURUSD 1h")
    w.compute.release.set()
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_f"})
        wait_until(lambda: client.get("/api/v1/operations/op_f").json()["status"] == "failed")
        failed = client.get("/api/v1/operations/op_f").json()
        assert failed["error_message"] == "ValueError: no data for EURUSD 1h"


def test_unknown_operation_is_a_404_envelope(make_worker):
    w = make_worker()
    with w.client as client:
        answers = (client.get("/api/v1/operations/nope"), client.delete("/api/v1/operations/nope/cancel"))
        for answer in answers:
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "OPERATION_NOT_FOUND"


def test_invalid_start_body_is_a_422_envelope(make_worker):
    w = make_worker()
    with w.client as client:
        headers = {"content-type": "application/json"}
        answer = client.post("/training/start", content=b"not json", headers=headers)
        assert answer.status_code == 422
        assert answer.json()["success"] is False
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


def test_shutdown_stops_the_running_operation_and_reports_it_failed(make_worker):
    w = make_worker()
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_s"})
        assert w.compute.started.wait(10)
    # leaving the client runs the lifespan's shutdown, as SIGTERM does under uvicorn
    reports = w.backend.bodies("PATCH", "/operations/op_s/status")
    assert reports, "the final status must reach the backend before the worker exits"
    assert reports[0]["status"] == "failed"
    assert "SIGTERM" in reports[0]["error_message"]


def test_final_report_is_retried_until_the_backend_accepts(make_worker):
    backend = FakeBackend(report_status=503)
    w = make_worker(backend)
    w.compute.release.set()
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_r"})
        wait_until(lambda: len(backend.bodies("PATCH", "/operations/op_r/status")) >= 2)
        backend.report_status = 200
        runtime = w.app.state.runtime
        wait_until(lambda: "op_r" not in runtime.unreported)


def test_a_diverged_computation_is_reported_with_nulls_where_its_numbers_were_not_finite(make_worker):
    """NaN and the infinities have no JSON spelling and the backend refuses them (422): the worker
    reports them as null, in its progress and in its result, and never loses the report."""
    nan, inf = float("nan"), float("inf")
    w = make_worker()
    w.compute.percentage = nan
    w.compute.context = {"val_loss": nan, "best_val_loss": inf, "epoch": 2}
    w.compute.result = {"metrics": {"test": {"loss": nan, "accuracy": 0.5}}, "history": [[1.0, -inf]]}
    with w.client as client:
        client.post("/training/start", json={"operation_id": "op_nan"})
        assert w.compute.started.wait(10)
        running = client.get("/api/v1/operations/op_nan").json()
        assert running["status"] == "running"
        assert running["progress"]["context"] == {"val_loss": None, "best_val_loss": None, "epoch": 2}
        w.compute.release.set()
        wait_until(lambda: w.backend.bodies("PATCH", "/operations/op_nan/status"))
    pushed = w.backend.bodies("PATCH", "/operations/op_nan/status")[0]
    assert pushed["status"] == "completed"
    assert pushed["result"] == {
        "metrics": {"test": {"loss": None, "accuracy": 0.5}},
        "history": [[1.0, None]],
    }
    OperationReport.model_validate(pushed)  # what the backend's own check takes
