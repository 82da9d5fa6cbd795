"""Helpers for the worker base app tests: a fake backend (httpx MockTransport) and a steerable compute."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ktrdr.jobs import CancelToken, Progress, ProgressCallback


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail the test if it never does (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


@dataclass
class FakeBackend:
    """Records the worker's calls; ``register_statuses`` and ``worker_statuses`` script the answers."""

    register_statuses: list[int] = field(default_factory=list)
    worker_statuses: list[int] = field(default_factory=list)
    report_status: int = 200
    calls: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body, dict(request.headers)))
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/workers/register":
            status = self.register_statuses.pop(0) if self.register_statuses else 200
            return httpx.Response(status, json=body if status == 200 else {"error": {"message": "starting"}})
        if request.method == "GET" and path.startswith("/api/v1/workers/"):
            status = self.worker_statuses.pop(0) if self.worker_statuses else 200
            return httpx.Response(status, json={})
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

    def __call__(self, progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
        progress(Progress(percentage=40.0, current_step="epoch 2/5", steps_completed=2, steps_total=5))
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
