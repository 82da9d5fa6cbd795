"""Fixtures for the worker tests (helpers live in worker_harness.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from worker_harness import (
    START_PATHS,
    Compute,
    FakeBackend,
    FakeClock,
    LiveWorker,
    WorkerHarness,
    create_worker,
    live_worker_settings,
    wait_until,
)

from ktrdr.protocol import StartAccepted, WorkerType
from ktrdr.settings import Settings
from ktrdr.worker.app import create_worker_app, worker_runtime
from tests.control.backend_fixtures import serve_in_thread


@pytest.fixture
def make_worker() -> Iterator[Callable[..., WorkerHarness]]:
    clients: list[TestClient] = []

    def make(
        backend: FakeBackend | None = None, clock: FakeClock | None = None, **settings: Any
    ) -> WorkerHarness:
        backend = backend or FakeBackend()
        compute = Compute()
        cfg = Settings(
            api_client_base_url="http://backend.test/api/v1",
            worker_id="training-test-abc123",
            worker_port=5999,
            **settings,
        )
        app = create_worker_app(
            worker_type=WorkerType.TRAINING,
            service="training-worker",
            default_port=5004,
            capabilities=lambda: {"gpu": False, "device": "cpu"},
            settings=lambda: cfg,
            backend_transport=httpx.MockTransport(backend.handler),
            registration_backoff=0.01,
            clock=clock or FakeClock(),
        )

        @app.post("/training/start")
        async def start(body: dict[str, Any], request: Request) -> StartAccepted:
            return worker_runtime(request.app).start(body["operation_id"], compute)

        client = TestClient(app)
        clients.append(client)
        return WorkerHarness(client, backend, compute, app)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module", params=list(START_PATHS))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWorker]:
    """Each real worker app, served by uvicorn behind a current and a previous token."""
    pytest.importorskip("torch")  # the worker apps check their compute dependencies at start-up
    role = request.param
    settings = live_worker_settings(role, tmp_path_factory.mktemp(role) / "data")
    backend = FakeBackend()
    app = create_worker(role, settings, backend)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        wait_until(lambda: bool(backend.bodies("POST", "/register")))
        yield LiveWorker(role, app, client, backend, settings)
