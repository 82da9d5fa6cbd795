"""Self-registration: backoff, re-registration when forgotten, identity, token, dependency check."""

from __future__ import annotations

import json
import re
import time

import pytest
from worker_harness import FakeBackend, create_worker, live_worker_settings, wait_until

from ktrdr.errors import ConfigurationError, MissingDependencyError
from ktrdr.protocol import WorkerType
from ktrdr.settings import Settings
from ktrdr.worker.deps_check import check_ml_dependencies
from ktrdr.worker.registration import backoff_delays, default_worker_id, resolve_endpoint_url


def test_registration_retries_through_unavailable_and_unreachable_backend(make_worker):
    backend = FakeBackend(register_statuses=[503, 502, 200])
    w = make_worker(backend)
    with w.client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
    assert len(backend.bodies("POST", "/register")) == 3


def test_reregisters_with_finished_operations_when_the_backend_forgot_it(make_worker):
    # No health polls arrive (nobody polls in this test), so after 3 intervals the worker asks the
    # backend about itself; the 404 means "forgotten" and it registers again with its history.
    backend = FakeBackend(worker_statuses=[404])
    w = make_worker(backend, worker_health_check_interval=0.05)
    w.compute.release.set()
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        client.post("/training/start", json={"operation_id": "op_done"})
        wait_until(lambda: client.get("/api/v1/operations/op_done").json()["status"] == "completed")
        wait_until(lambda: len(backend.bodies("POST", "/register")) >= 2)
    again = backend.bodies("POST", "/register")[1]
    assert [r["operation_id"] for r in again["completed_operations"]] == ["op_done"]
    assert again["completed_operations"][0]["status"] == "completed"
    assert any(m == "GET" and p == "/api/v1/workers/training-test-abc123" for m, p, _, _ in backend.calls)


def test_reregistration_carries_only_the_results_the_backend_has_not_acknowledged(make_worker):
    """A result can take half the backend's request-body limit (a backtest's curves and trades):
    the ones the backend already stored stay home, so the registration still fits the limit."""
    limit = Settings().max_body_bytes
    backend = FakeBackend()
    w = make_worker(backend, worker_health_check_interval=0.05)
    w.compute.result = {"curves": "x" * (limit // 2)}
    w.compute.release.set()
    runtime = w.app.state.runtime
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        for n in range(4):
            if n == 3:
                backend.report_status = 503  # the last report is never acknowledged
            client.post("/training/start", json={"operation_id": f"op_{n}"})
            wait_until(lambda n=n: len(backend.bodies("PATCH", f"/operations/op_{n}/status")) >= 1)
        wait_until(lambda: {"op_0", "op_1", "op_2"}.isdisjoint(runtime.unreported))
        backend.worker_statuses.append(404)  # now the backend forgets the worker
        wait_until(lambda: len(backend.bodies("POST", "/register")) >= 2)
    again = backend.bodies("POST", "/register")[-1]
    carried = {r["operation_id"]: r["result"] for r in again["completed_operations"]}
    assert set(carried) == {"op_0", "op_1", "op_2", "op_3"}
    assert carried["op_3"] == w.compute.result
    assert carried["op_0"] is carried["op_1"] is carried["op_2"] is None
    assert len(json.dumps(again)) < limit


def _finish_unacknowledged(w, client, count: int) -> None:
    """Run ``count`` operations whose final reports the backend never acknowledges."""
    w.backend.report_status = 503
    w.compute.release.set()
    for n in range(count):
        client.post("/training/start", json={"operation_id": f"op_{n}"})
        wait_until(lambda n=n: client.get(f"/api/v1/operations/op_{n}").json()["status"] == "completed")


def test_reregistration_fits_the_body_limit_whatever_the_backend_has_not_acknowledged(make_worker):
    """Three unacknowledged results of half the body limit each: the registration carries what fits
    (with a margin) and every operation's final status; the backend fetches the rest (GET)."""
    limit = Settings().max_body_bytes
    backend = FakeBackend(body_limit=limit)
    w = make_worker(backend, worker_health_check_interval=0.05)
    w.compute.result = {"curves": "x" * (limit // 2)}
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        _finish_unacknowledged(w, client, 3)
        backend.worker_statuses.append(404)  # now the backend forgets the worker
        wait_until(lambda: w.app.state.registrar.registrations >= 2)
    again = backend.bodies("POST", "/register")[-1]
    assert len(json.dumps(again)) <= 3 * limit // 4
    carried = {r["operation_id"]: (r["status"], r["result"]) for r in again["completed_operations"]}
    assert set(carried) == {"op_0", "op_1", "op_2"}
    assert {status for status, _ in carried.values()} == {"completed"}
    assert [op for op, (_, result) in carried.items() if result is not None] == ["op_2"]  # the newest
    assert carried["op_2"][1] == w.compute.result


def test_a_registration_refused_as_too_large_is_sent_again_at_once_without_results(make_worker):
    """A backend with a smaller limit than the worker's: 413, and the next attempt carries the
    statuses without any result (the backend fetches those), instead of the same body forever."""
    limit = Settings().max_body_bytes
    backend = FakeBackend(body_limit=limit // 4)
    w = make_worker(backend, worker_health_check_interval=0.05)
    w.compute.result = {"curves": "x" * (limit // 2)}
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        _finish_unacknowledged(w, client, 2)
        backend.worker_statuses.append(404)
        wait_until(lambda: w.app.state.registrar.registrations >= 2)
    sent = backend.bodies("POST", "/register")
    refused, accepted = sent[-2], sent[-1]
    assert [r["result"] is not None for r in refused["completed_operations"]] == [True, False]
    assert [(r["operation_id"], r["status"], r["result"]) for r in accepted["completed_operations"]] == [
        ("op_1", "completed", None),
        ("op_0", "completed", None),
    ]


def test_a_final_report_refused_as_too_large_is_sent_again_as_its_status(make_worker):
    limit = Settings().max_body_bytes
    backend = FakeBackend(body_limit=limit // 4)
    w = make_worker(backend)
    w.compute.result = {"curves": "x" * (limit // 2)}
    w.compute.release.set()
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        client.post("/training/start", json={"operation_id": "op_big"})
        wait_until(lambda: len(backend.bodies("PATCH", "/operations/op_big/status")) >= 2)
        wait_until(lambda: not w.app.state.runtime.unreported)
    first, second = backend.bodies("PATCH", "/operations/op_big/status")[:2]
    assert first["result"] == w.compute.result
    assert (second["status"], second["result"]) == ("completed", None)  # the backend fetches the result


def test_health_polls_keep_the_worker_from_asking_the_backend(make_worker):
    # Polled every 50 ms for five intervals: the worker's three-interval silence window (0.9 s) is
    # wide enough that a loaded machine's scheduling gaps cannot open it, and long enough that
    # without the polls the worker would have asked.
    backend = FakeBackend(worker_statuses=[404])
    w = make_worker(backend, worker_health_check_interval=0.3)
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        deadline = time.monotonic() + 5 * 0.3
        while time.monotonic() < deadline:
            client.get("/health")
            time.sleep(0.05)
    assert not any(m == "GET" and p.startswith("/api/v1/workers/") for m, p, _, _ in backend.calls)


def test_bearer_token_is_sent_when_configured(make_worker):
    w = make_worker(api_token="s3cret")
    with w.client:
        wait_until(lambda: w.backend.bodies("POST", "/register"))
    headers = next(h for m, p, _, h in w.backend.calls if p.endswith("/register"))
    assert headers["authorization"] == "Bearer s3cret"


def test_no_authorization_header_without_a_token(make_worker):
    w = make_worker()
    with w.client:
        wait_until(lambda: w.backend.bodies("POST", "/register"))
    headers = next(h for m, p, _, h in w.backend.calls if p.endswith("/register"))
    assert "authorization" not in headers


@pytest.mark.parametrize("worker_id", ["bad id", "../escape", "-dash-first", "x" * 129, "wörker"])
async def test_a_worker_id_the_backend_would_refuse_stops_the_worker_at_start_up(tmp_path, worker_id):
    backend = FakeBackend()
    app = create_worker(
        "backtest-worker", live_worker_settings("backtest-worker", tmp_path, worker_id=worker_id), backend
    )
    with pytest.raises(ConfigurationError, match="KTRDR_WORKER_ID") as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "invalid worker id" in refused.value.message
    assert backend.calls == []  # it never tried to register


def test_default_worker_id_names_type_and_host():
    worker_id = default_worker_id(WorkerType.BACKTESTING, hostname="gpu box/1")
    assert re.fullmatch(r"backtesting-gpu-box-1-[0-9a-f]{6}", worker_id)
    assert default_worker_id(WorkerType.TRAINING) != default_worker_id(WorkerType.TRAINING)


def test_endpoint_url_prefers_the_public_base_url():
    assert resolve_endpoint_url(Settings(worker_host="10.0.0.5"), 5003) == "http://10.0.0.5:5003"
    public = Settings(worker_public_base_url="http://backtest-worker:5003/")
    assert resolve_endpoint_url(public, 9999) == "http://backtest-worker:5003"


def test_backoff_doubles_from_one_second_to_a_thirty_second_cap_with_jitter():
    delay = backoff_delays(1.0, 30.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (5, 30.0), (40, 30.0)]:
        samples = [delay(attempt) for _ in range(20)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1


def test_dependency_check_names_the_missing_module():
    with pytest.raises(MissingDependencyError) as caught:
        check_ml_dependencies("backtest-worker", modules=("json", "ktrdr_no_such_module"))
    assert "backtest-worker needs the 'ml' extra" in caught.value.message
    assert "No module named 'ktrdr_no_such_module'" in caught.value.message
    assert caught.value.details["module"] == "ktrdr_no_such_module"
