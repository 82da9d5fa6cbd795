"""Dispatch: create an operation and hand it to a free worker of the right type.

Workers are tried least-recently-used first (training: GPU-capable ones before the rest). A worker
that answers 503 (busy), cannot be reached or refuses the backend's token (401/403: a worker
configured with another token) is skipped for the next. When no worker takes the
operation, its row is deleted again and the caller gets 503 NO_WORKER_AVAILABLE: a refused start
leaves nothing behind. A worker that refuses the request itself (another 4xx) fails the operation
with the worker's reason and the caller gets 502 WORKER_ERROR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ktrdr.control.models import Operation
from ktrdr.control.registry import WorkerRegistry
from ktrdr.control.store import OperationStore
from ktrdr.control.worker_client import WorkerClient, call_errors
from ktrdr.errors import NoWorkerAvailableError, WorkerError
from ktrdr.logs import get_logger
from ktrdr.protocol import OPERATION_FOR_WORKER, OperationStatus, OperationType, WorkerInfo

log = get_logger(__name__)


class Dispatcher:
    def __init__(self, store: OperationStore, registry: WorkerRegistry, client: WorkerClient) -> None:
        self._store = store
        self._registry = registry
        self._client = client

    def _none_available(self, operation_type: OperationType, tried: int) -> NoWorkerAvailableError:
        worker_type = OPERATION_FOR_WORKER[operation_type]
        summary = {w.worker_id: w.status.value for w in self._registry.list_workers(worker_type=worker_type)}
        if not summary:
            message = f"no {worker_type.value} worker is registered; start one and retry"
        elif tried:
            message = f"all {worker_type.value} workers are busy or unreachable (tried {tried}); retry later"
        else:
            message = f"no {worker_type.value} worker is free ({len(summary)} registered, none available)"
        return NoWorkerAvailableError(message, details={"worker_type": worker_type.value, "workers": summary})

    async def submit(
        self,
        operation_type: OperationType,
        params: dict[str, Any],
        build_payload: Callable[[str], BaseModel],
        *,
        prefer_gpu: bool = False,
    ) -> tuple[Operation, WorkerInfo]:
        """Create the operation, start it on a worker, and return it (running) with that worker."""
        worker_type = OPERATION_FOR_WORKER[operation_type]
        candidates = self._registry.candidates(worker_type, prefer_gpu=prefer_gpu)
        if not candidates:
            raise self._none_available(operation_type, 0)

        operation = await self._store.create(operation_type, params)
        payload = build_payload(operation.operation_id)
        for worker in candidates:
            try:
                token = self._registry.token_for(worker.worker_id)
                outcome = await self._client.start(worker.endpoint_url, operation_type, payload, token=token)
            except call_errors() as exc:
                log.warning("dispatch.worker_unreachable", worker_id=worker.worker_id, error=str(exc))
                self._registry.mark_busy(worker.worker_id)
                continue
            if outcome.token_refused:
                log.error(
                    "dispatch.worker_refused_token",
                    worker_id=worker.worker_id,
                    status=outcome.status_code,
                    hint="the worker's KTRDR_API_TOKEN differs from the backend's",
                )
                self._registry.mark_busy(worker.worker_id)
                continue
            if outcome.busy or (not outcome.accepted and outcome.status_code >= 500):
                log.info("dispatch.worker_busy", worker_id=worker.worker_id, status=outcome.status_code)
                self._registry.mark_busy(worker.worker_id)
                continue
            if not outcome.accepted:
                reason = f"worker {worker.worker_id} refused the operation: {outcome.message}"
                await self._store.finish(operation.operation_id, OperationStatus.FAILED, error_message=reason)
                raise WorkerError(
                    reason,
                    details={
                        "operation_id": operation.operation_id,
                        "worker_id": worker.worker_id,
                        "status": outcome.status_code,
                    },
                )
            self._registry.mark_dispatched(worker.worker_id, operation.operation_id)
            await self._store.mark_running(operation.operation_id, worker.worker_id)
            log.info(
                "dispatch.started",
                operation_id=operation.operation_id,
                operation_type=operation_type.value,
                worker_id=worker.worker_id,
            )
            return await self._store.get(operation.operation_id), worker

        await self._store.delete(operation.operation_id)
        raise self._none_available(operation_type, len(candidates))
