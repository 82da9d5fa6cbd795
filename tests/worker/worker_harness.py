"""Helpers for the worker tests: a fake backend (httpx MockTransport), a steerable compute, and the
real worker apps served behind their tokens."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ktrdr.jobs import CancelToken, Progress, ProgressCallback
from ktrdr.settings import Settings


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test if it never does (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


class FakeClock:
    """A monotonic clock the test moves: the registrar measures the backend's silence with it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeBackend:
    """Records the worker's calls; ``register_statuses`` scripts the registration answers."""

    register_statuses: list[int] = field(default_factory=list)
    report_status: int = 200
    body_limit: int | None = None  # the backend's request-body limit: larger bodies get 413
    calls: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body, dict(request.headers)))
        path = request.url.path
        if self.body_limit is not None and len(request.content) > self.body_limit:
            return httpx.Response(413, json={"error": {"message": "request body exceeds the limit"}})
        if request.method == "POST" and path == "/api/v1/workers/register":
            status = self.register_statuses.pop(0) if self.register_statuses else 200
            return httpx.Response(status, json=body if status == 200 else {"error": {"message": "starting"}})
        if request.method == "PATCH" and path.endswith("/status"):
            return httpx.Response(self.report_status, json={"success": True})
        return httpx.Response(404, json={})

    def bodies(self, method: str, suffix: str) -> list[dict[str, Any]]:
        return [b or {} for m, p, b, _ in self.calls if m == method and p.endswith(suffix)]


class Compute:
    """A compute the test steers: it reports progress, then waits for ``release`` or cancellation."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.error: Exception | None = None
        self.result: dict[str, Any] = {"model_path": "m/1h_v1", "sharpe_ratio": 1.25}
        self.percentage = 40.0
        self.context: dict[str, Any] = {}

    def __call__(self, progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
        progress(
            Progress(
                percentage=self.percentage,
                current_step="epoch 2/5",
                steps_completed=2,
                steps_total=5,
                context=self.context,
            )
        )
        self.started.set()
        while not self.release.wait(0.01):
            cancel.raise_if_cancelled()
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class WorkerHarness:
    client: TestClient
    backend: FakeBackend
    compute: Compute
    app: FastAPI


# --- the real worker apps (backtest, training), served by uvicorn, behind a current and a previous token

CURRENT, PREVIOUS = "tok-current-9a1c", "tok-previous-44b0"
START_PATHS = {"backtest-worker": "/backtests/start", "training-worker": "/training/start"}


@dataclass
class LiveWorker:
    role: str
    app: FastAPI
    client: httpx.Client  # presents no token of its own
    backend: FakeBackend
    settings: Settings

    @property
    def start_path(self) -> str:
        return START_PATHS[self.role]

    def authed(self, token: str = CURRENT) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def live_worker_settings(role: str, data_dir: Path, **overrides: object) -> Settings:
    """A production worker mid-rotation (current and previous token), with its own data directory."""
    values: dict[str, object] = {
        "env": "production",
        "data_dir": data_dir,
        "api_client_base_url": "http://backend.test/api/v1",
        "worker_id": f"{role}-live",
        "worker_health_check_interval": 60.0,
        "api_token": SecretStr(CURRENT),
        "api_token_previous": SecretStr(PREVIOUS),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def create_worker(role: str, settings: Settings, backend: FakeBackend) -> FastAPI:
    """The real app of ``role`` (``ktrdr.worker.<role>.create_app``), talking to ``backend``."""
    module = importlib.import_module(f"ktrdr.worker.{role.replace('-', '_')}")
    app: FastAPI = module.create_app(
        settings=lambda: settings,
        backend_transport=httpx.MockTransport(backend.handler),
        registration_backoff=0.01,
    )
    return app
