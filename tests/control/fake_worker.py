"""Fake workers behind an httpx MockTransport: each speaks the worker side of the protocol.

Used by the api, operations and registry tests. A worker can be made busy, refuse starts, die
(every call then fails to connect), finish or fail its operation, or forget it (a restart). With
``tokens`` set it answers 401 to any call but ``GET /health`` that lacks one of them, as a real
worker does; ``authorizations`` records what each call presented.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from ktrdr.protocol import (
    OperationReport,
    OperationStatus,
    ProgressModel,
    WorkerHealth,
    WorkerRegistration,
    WorkerType,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FakeWorker:
    worker_id: str
    worker_type: WorkerType
    port: int
    capabilities: dict[str, Any] = field(default_factory=dict)
    alive: bool = True
    start_status: int = 200  # 503 = busy; anything >= 400 refuses
    operations: dict[str, OperationReport] = field(default_factory=dict)
    current: str | None = None
    starts: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    tokens: tuple[str, ...] = ()
    authorizations: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def registration(self, **overrides: Any) -> dict[str, Any]:
        body = WorkerRegistration(
            worker_id=self.worker_id,
            worker_type=self.worker_type,
            endpoint_url=self.endpoint_url,
            capabilities=self.capabilities,
            current_operation_id=self.current,
        ).model_dump(mode="json")
        body.update(overrides)
        return body

    def progress(self, operation_id: str, percentage: float, step: str = "working") -> None:
        report = self.operations[operation_id]
        report.progress = ProgressModel(percentage=percentage, current_step=step)

    def finish(self, operation_id: str, status: OperationStatus, **fields: Any) -> OperationReport:
        report = self.operations[operation_id]
        report.status = status
        report.completed_at = _now()
        for key, value in fields.items():
            setattr(report, key, value)
        if self.current == operation_id:
            self.current = None
        return report

    def forget(self) -> None:
        """A restart: nothing running, nothing remembered."""
        self.operations.clear()
        self.current = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.alive:
            raise httpx.ConnectError("connection refused", request=request)
        path, method = request.url.path, request.method
        presented = request.headers.get("authorization")
        self.authorizations.append((method, path, presented))
        if self.tokens and path != "/health" and presented not in {f"Bearer {t}" for t in self.tokens}:
            error = {"code": "UNAUTHORIZED", "message": "the bearer token is not valid", "details": {}}
            return httpx.Response(401, json={"success": False, "error": error})
        if method == "GET" and path == "/health":
            health = WorkerHealth(
                healthy=True,
                service=f"{self.worker_type.value}-worker",
                worker_id=self.worker_id,
                worker_type=self.worker_type,
                worker_status="busy" if self.current else "idle",
                current_operation=self.current,
                timestamp=_now(),
            )
            return httpx.Response(200, json=health.model_dump(mode="json"))
        if method == "POST" and path in ("/training/start", "/backtests/start"):
            if self.start_status != 200:
                return httpx.Response(self.start_status, json={"detail": f"refused with {self.start_status}"})
            if self.current:
                return httpx.Response(503, json={"detail": "busy"})
            body = json.loads(request.content)
            self.starts.append(body)
            op_id = body["operation_id"]
            self.current = op_id
            self.operations[op_id] = OperationReport(
                operation_id=op_id, status=OperationStatus.RUNNING, started_at=_now()
            )
            return httpx.Response(200, json={"success": True, "operation_id": op_id, "status": "started"})
        if path.startswith("/api/v1/operations/"):
            rest = path.removeprefix("/api/v1/operations/")
            op_id = rest.removesuffix("/cancel")
            report = self.operations.get(op_id)
            if report is None:
                return httpx.Response(404, json={"detail": "unknown operation"})
            if method == "DELETE" and rest.endswith("/cancel"):
                self.cancels.append(op_id)
                if not report.status.is_terminal:
                    self.finish(
                        op_id, OperationStatus.CANCELLED, error_message=request.url.params.get("reason")
                    )
                return httpx.Response(200, json=report.model_dump(mode="json"))
            if method == "GET":
                return httpx.Response(200, json=report.model_dump(mode="json"))
        return httpx.Response(404, json={"detail": "not found"})


class FakeWorkerPool:
    """Routes each request to the fake worker listening on its port; unknown ports refuse."""

    def __init__(self) -> None:
        self.workers: dict[int, FakeWorker] = {}
        self._next_port = 15100

    def add(self, worker_type: WorkerType, worker_id: str | None = None, **kwargs: Any) -> FakeWorker:
        port = self._next_port
        self._next_port += 1
        worker = FakeWorker(worker_id or f"{worker_type.value}-{port}", worker_type, port, **kwargs)
        self.workers[port] = worker
        return worker

    def handle(self, request: httpx.Request) -> httpx.Response:
        worker = self.workers.get(request.url.port or 80)
        if worker is None:
            raise httpx.ConnectError("connection refused", request=request)
        return worker.handle(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)
