"""How operations move after dispatch: worker reports, progress pulls, cancels, and reconciliation.

Rules (the "nothing runs forever" guarantee):

- A worker's report (pushed with PATCH, pulled on a user's GET, or carried in a registration)
  settles an operation; the first final status wins. A completed report that comes without its
  result (too large for the request that carried it) makes the backend fetch the whole report
  from the worker before it settles anything.
- A running operation whose worker has failed ``failures`` health checks in a row is failed with
  "worker X stopped answering health checks" (the monitor runs every health interval, so this
  happens within about ``failures`` intervals).
- A running operation whose worker answers but no longer runs it is settled from the worker's
  report, or failed when the worker does not know it (it restarted).
- After a backend restart, workers are taken over from the store and polled at once; the rules
  above then apply unchanged. Operations still ``pending`` from a previous process (it died while
  dispatching) are failed, and a running operation whose worker is not registered at all is
  failed once the failure window has passed.
"""

from __future__ import annotations

import asyncio
import time

from ktrdr.control.models import Operation, utcnow
from ktrdr.control.registry import WorkerRegistry
from ktrdr.control.store import OperationStore
from ktrdr.control.worker_client import WorkerClient, call_errors
from ktrdr.errors import ConflictError, OperationNotFoundError
from ktrdr.logs import get_logger
from ktrdr.protocol import OperationReport, OperationStatus, WorkerRegistration, WorkerStatus

log = get_logger(__name__)

PROGRESS_TTL_S = 1.0
PROGRESS_PULL_WAIT_S = 1.0


class OperationLifecycle:
    """Applies worker reports to the store and runs the health/reconciliation monitor."""

    def __init__(
        self,
        store: OperationStore,
        registry: WorkerRegistry,
        client: WorkerClient,
        *,
        health_interval: float,
        failures_threshold: int,
        progress_ttl: float = PROGRESS_TTL_S,
    ) -> None:
        self._store = store
        self._registry = registry
        self._client = client
        self.health_interval = health_interval
        self._grace_s = health_interval * max(1, failures_threshold)
        self._progress_ttl = progress_ttl
        self._started_at = utcnow()
        self._started_monotonic = time.monotonic()
        self._pulled_at: dict[str, float] = {}

    # --- reports ---------------------------------------------------------------------------------

    async def apply_report(self, report: OperationReport, *, worker_id: str | None = None) -> Operation:
        """Record what a worker says about an operation; raises 409 for a running report on a final one.

        A completed report without its result is the status alone (it did not fit the worker's
        request): the whole report is fetched from the worker first, and when that fails the
        operation is left to reconciliation, which asks again on its next round.
        """
        operation = await self._store.get(report.operation_id)
        if (
            report.status is OperationStatus.COMPLETED
            and report.result is None
            and not operation.status.is_terminal
        ):
            whole = await self._whole_report(operation, worker_id)
            if whole is None:
                return operation
            report = whole
        if report.status.is_terminal:
            changed = await self._store.finish(
                operation.operation_id,
                report.status,
                result=report.result,
                error_message=report.error_message,
                progress=report.progress,
                completed_at=report.completed_at,
            )
            if changed:
                log.info(
                    "operation.finished",
                    operation_id=operation.operation_id,
                    status=report.status.value,
                    worker_id=operation.worker_id or worker_id,
                    error=report.error_message,
                )
            self._registry.mark_idle(operation.worker_id or worker_id, operation.operation_id)
            self._pulled_at.pop(operation.operation_id, None)
            return await self._store.get(operation.operation_id)
        if operation.status.is_terminal:
            raise ConflictError(
                f"operation {operation.operation_id} is already {operation.status.value}",
                details={"operation_id": operation.operation_id, "status": operation.status.value},
            )
        if report.status == OperationStatus.RUNNING and (worker_id or operation.worker_id):
            await self._store.mark_running(
                operation.operation_id, worker_id or operation.worker_id or "", report.started_at
            )
        await self._store.update_progress(operation.operation_id, report.progress)
        return await self._store.get(operation.operation_id)

    async def _whole_report(self, operation: Operation, worker_id: str | None) -> OperationReport | None:
        """The worker's own final report on ``operation`` (with its result), or None when it cannot say."""
        worker = self._registry.find(operation.worker_id or worker_id or "")
        if worker is None:
            return None
        try:
            report = await self._client.get_operation(
                worker.endpoint_url, operation.operation_id, token=self._registry.token_for(worker.worker_id)
            )
        except call_errors() as exc:
            log.info("operation.result_not_fetched", operation_id=operation.operation_id, error=str(exc))
            return None
        if report is None or report.operation_id != operation.operation_id or not report.status.is_terminal:
            return None
        return report

    async def refresh(self, operation: Operation) -> Operation:
        """A running operation's latest state, pulled from its worker when the stored copy is stale."""
        if operation.status != OperationStatus.RUNNING or not operation.worker_id:
            return operation
        now = time.monotonic()
        if now - self._pulled_at.get(operation.operation_id, 0.0) < self._progress_ttl:
            return operation
        worker = self._registry.find(operation.worker_id)
        if worker is None or worker.status == WorkerStatus.TEMPORARILY_UNAVAILABLE:
            return operation
        self._pulled_at[operation.operation_id] = now
        try:
            report = await self._client.get_operation(
                worker.endpoint_url,
                operation.operation_id,
                token=self._registry.token_for(worker.worker_id),
                wait_s=PROGRESS_PULL_WAIT_S,
            )
        except call_errors() as exc:
            log.debug("operation.progress_pull_failed", operation_id=operation.operation_id, error=str(exc))
            return operation
        if report is None or report.operation_id != operation.operation_id:
            return operation  # the monitor decides what an unknown operation means
        try:
            return await self.apply_report(report, worker_id=worker.worker_id)
        except ConflictError:
            return await self._store.get(operation.operation_id)

    # --- cancel ----------------------------------------------------------------------------------

    async def cancel(self, operation_id: str, reason: str = "cancelled by user") -> Operation:
        """Cancel an active operation, telling its worker; 409 when it already finished."""
        operation = await self._store.get(operation_id)
        if operation.status.is_terminal:
            raise ConflictError(
                f"operation {operation_id} is already {operation.status.value} and cannot be cancelled",
                details={"operation_id": operation_id, "status": operation.status.value},
            )
        worker = self._registry.find(operation.worker_id) if operation.worker_id else None
        if worker is not None:
            try:
                token = self._registry.token_for(worker.worker_id)
                report = await self._client.cancel(worker.endpoint_url, operation_id, reason, token=token)
            except call_errors() as exc:
                log.warning("operation.cancel_not_delivered", operation_id=operation_id, error=str(exc))
                report = None
            if report is not None and report.status.is_terminal and report.operation_id == operation_id:
                return await self.apply_report(report, worker_id=worker.worker_id)
        await self._store.finish(operation_id, OperationStatus.CANCELLED, error_message=reason)
        log.info(
            "operation.cancelled", operation_id=operation_id, worker_id=operation.worker_id, reason=reason
        )
        return await self._store.get(operation_id)

    # --- registration and reconciliation ---------------------------------------------------------

    async def on_registered(self, registration: WorkerRegistration) -> None:
        """Settle operations with what a (re-)registering worker says it ran and runs."""
        wid = registration.worker_id
        reported = set()
        for report in registration.completed_operations:
            reported.add(report.operation_id)
            if not report.status.is_terminal:
                continue
            try:
                await self.apply_report(report, worker_id=wid)
            except OperationNotFoundError:
                log.info(
                    "reconcile.unknown_completed_operation", worker_id=wid, operation_id=report.operation_id
                )
        current = registration.current_operation_id
        if current:
            try:
                operation = await self._store.get(current)
            except OperationNotFoundError:
                log.warning("reconcile.unknown_current_operation", worker_id=wid, operation_id=current)
            else:
                if not operation.status.is_terminal:
                    await self._store.mark_running(current, wid)
        for operation in await self._store.active():
            if (
                operation.worker_id == wid
                and operation.status == OperationStatus.RUNNING
                and operation.operation_id != current
                and operation.operation_id not in reported
            ):
                await self._fail(
                    operation, f"worker {wid} registered again without operation {operation.operation_id}"
                )

    async def reconcile(self) -> None:
        """Fail or settle every active operation whose worker cannot be running it any more."""
        for operation in await self._store.active():
            try:
                await self._reconcile_one(operation)
            except OperationNotFoundError:
                continue

    async def _reconcile_one(self, operation: Operation) -> None:
        if operation.status == OperationStatus.PENDING:
            if operation.created_at < self._started_at:
                await self._fail(operation, "the backend restarted before the operation was dispatched")
            return
        wid = operation.worker_id
        worker = self._registry.find(wid) if wid else None
        if worker is None:
            if time.monotonic() - self._started_monotonic >= self._grace_s:
                await self._fail(operation, f"worker {wid} is no longer registered with the backend")
            return
        if self._registry.is_lost(worker.worker_id):
            await self._fail(operation, f"worker {wid} stopped answering health checks")
            return
        if worker.status == WorkerStatus.TEMPORARILY_UNAVAILABLE or worker.last_healthy_at is None:
            return
        if worker.current_operation_id == operation.operation_id:
            return
        try:
            report = await self._client.get_operation(
                worker.endpoint_url, operation.operation_id, token=self._registry.token_for(worker.worker_id)
            )
        except call_errors():
            return
        if report is None:
            await self._fail(operation, f"worker {wid} does not know operation {operation.operation_id}")
        elif report.status.is_terminal:
            await self.apply_report(report, worker_id=wid)

    async def _fail(self, operation: Operation, reason: str) -> None:
        if await self._store.finish(operation.operation_id, OperationStatus.FAILED, error_message=reason):
            log.warning("operation.failed", operation_id=operation.operation_id, reason=reason)
        self._registry.mark_idle(operation.worker_id, operation.operation_id)
        self._pulled_at.pop(operation.operation_id, None)

    # --- the monitor -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round: poll every worker, forget long-silent ones, reconcile active operations."""
        await self._registry.check_all()
        await self._registry.remove_stale()
        await self.reconcile()

    async def run(self) -> None:
        """Run :meth:`tick` every health interval until cancelled; a failed round is logged, not fatal."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor.round_failed")
            await asyncio.sleep(self.health_interval)
