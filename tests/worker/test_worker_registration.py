"""Self-registration: backoff, re-registration when forgotten, identity, token, dependency check."""

from __future__ import annotations

import json
import re

import pytest
from worker_harness import FakeBackend, FakeClock, create_worker, live_worker_settings, wait_until

from ktrdr.errors import ConfigurationError, MissingDependencyError
from ktrdr.protocol import WorkerRegistration, WorkerType
from ktrdr.settings import Settings
from ktrdr.worker.backend_client import Outcome
from ktrdr.worker.deps_check import check_ml_dependencies
from ktrdr.worker.registration import Registrar, backoff_delays, default_worker_id, resolve_endpoint_url


def test_registration_retries_through_unavailable_and_unreachable_backend(make_worker):
    backend = FakeBackend(register_statuses=[503, 502, 200])
    w = make_worker(backend)
    with w.client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
    assert len(backend.bodies("POST", "/register")) == 3


def test_registers_again_with_its_finished_operations_when_the_backend_stops_polling(make_worker):
    # Nobody polls in this test: once the clock says three intervals have passed, the worker
    # registers again (idempotent) with its history, without asking the backend first.
    clock = FakeClock()
    backend = FakeBackend()
    w = make_worker(backend, clock=clock, worker_health_check_interval=0.05)
    w.compute.release.set()
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        client.post("/training/start", json={"operation_id": "op_done"})
        wait_until(lambda: client.get("/api/v1/operations/op_done").json()["status"] == "completed")
        clock.advance(3 * 0.05 + 0.01)
        wait_until(lambda: len(backend.bodies("POST", "/register")) >= 2)
    again = backend.bodies("POST", "/register")[1]
    assert [r["operation_id"] for r in again["completed_operations"]] == ["op_done"]
    assert again["completed_operations"][0]["status"] == "completed"
    assert [(m, p) for m, p, _, _ in backend.calls if m == "GET"] == []


def test_reregistration_carries_only_the_results_the_backend_has_not_acknowledged(make_worker):
    """A result can take half the backend's request-body limit (a backtest's curves and trades):
    the ones the backend already stored stay home, so the registration still fits the limit."""
    limit = Settings().max_body_bytes
    clock = FakeClock()
    backend = FakeBackend()
    w = make_worker(backend, clock=clock, worker_health_check_interval=0.05)
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
        clock.advance(1.0)  # now the backend's polls stop
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
    clock = FakeClock()
    backend = FakeBackend(body_limit=limit)
    w = make_worker(backend, clock=clock, worker_health_check_interval=0.05)
    w.compute.result = {"curves": "x" * (limit // 2)}
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        _finish_unacknowledged(w, client, 3)
        clock.advance(1.0)  # now the backend's polls stop
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
    clock = FakeClock()
    backend = FakeBackend(body_limit=limit // 4)
    w = make_worker(backend, clock=clock, worker_health_check_interval=0.05)
    w.compute.result = {"curves": "x" * (limit // 2)}
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        _finish_unacknowledged(w, client, 2)
        clock.advance(1.0)
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


class _CountingBackend:
    """The registrar's view of a backend that accepts every registration and counts them."""

    base_url = "http://backend.test"

    def __init__(self) -> None:
        self.registrations = 0

    async def register(self, registration):
        self.registrations += 1
        return Outcome.OK, ""


def _registrar(clock: FakeClock) -> tuple[Registrar, _CountingBackend]:
    backend = _CountingBackend()
    registration = WorkerRegistration(
        worker_id="w-1", worker_type=WorkerType.TRAINING, endpoint_url="http://127.0.0.1:5004"
    )
    return Registrar(backend, lambda: registration, health_interval=10.0, clock=clock), backend


async def test_the_backends_polls_keep_the_worker_from_registering_again() -> None:
    clock = FakeClock()
    registrar, backend = _registrar(clock)
    await registrar.register()
    for _ in range(20):  # 200 s, one poll per interval
        clock.advance(10.0)
        registrar.health_checked()
        assert await registrar.keep_registered() is False
    assert backend.registrations == 1


async def test_without_the_backends_polls_the_worker_registers_again_after_three_intervals() -> None:
    clock = FakeClock()
    registrar, backend = _registrar(clock)
    await registrar.register()
    clock.advance(30.0)  # three intervals exactly: not yet
    assert await registrar.keep_registered() is False
    clock.advance(0.5)
    assert await registrar.keep_registered() is True
    assert backend.registrations == 2 and registrar.silent_for == 0.0
    assert await registrar.keep_registered() is False  # the registration counts as contact


def test_with_a_token_only_a_poll_that_carries_one_is_the_backends(make_worker):
    """Container probes (no token) keep getting answers, but only the backend's poll (its token:
    the current or the previous one) tells the worker the backend still calls it."""
    clock = FakeClock()
    w = make_worker(clock=clock, api_token="tok-now", api_token_previous="tok-before")
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        registrar = w.app.state.registrar
        for n, authorization in enumerate([None, "Bearer wrong", "Basic tok-now", "tok-now"], start=1):
            clock.advance(5.0)
            headers = {"Authorization": authorization} if authorization else {}
            assert client.get("/health", headers=headers).status_code == 200
            assert registrar.silent_for == 5.0 * n
        for token in ("tok-now", "tok-before"):
            clock.advance(5.0)
            client.get("/health", headers={"Authorization": f"Bearer {token}"})
            assert registrar.silent_for == 0.0


def test_without_a_token_any_poll_counts(make_worker):
    """The limitation docs/architecture.md states: with no token there is nothing to tell the
    backend's poll from a probe by."""
    clock = FakeClock()
    w = make_worker(clock=clock)
    with w.client as client:
        wait_until(lambda: w.app.state.registrar.registered.is_set())
        clock.advance(5.0)
        client.get("/health")
        assert w.app.state.registrar.silent_for == 0.0


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
