"""One worker's operations: at most one running at a time, its progress, cancellation and history.

Compute runs in a daemon thread with a :class:`ktrdr.jobs.CancelToken` and a progress callback, so
the event loop keeps answering health polls and progress requests while a model trains. The
thread is a daemon (rather than ``asyncio.to_thread``'s pool) so that compute that ignores its
cancel token can never keep a stopping worker alive past its shutdown budget.

Numbers that are not finite in a progress report or a result (a diverged training's NaN loss) are
kept as null: the wire refuses them, and the report must still arrive. When an operation ends, its
final report is pushed to the backend (PATCH, retried with backoff) and kept: a worker that
re-registers sends its recent finished operations along, which is how a backend that restarted
mid-operation learns what happened while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import structlog

from ktrdr.errors import KtrdrError, OperationNotFoundError, ServiceUnavailableError
from ktrdr.jobs import CancelToken, OperationCancelled, Progress, ProgressCallback
from ktrdr.names import finite_json
from ktrdr.protocol import OperationReport, OperationStatus, ProgressModel, StartAccepted
from ktrdr.worker.backend_client import BackendClient, Outcome
from ktrdr.worker.registration import backoff_delays

log = structlog.get_logger(__name__)

# compute(progress, cancel) -> result dict; runs in a thread
Compute = Callable[[ProgressCallback, CancelToken], dict[str, Any]]

HISTORY_SIZE = 50
REPORTED_ON_REGISTRATION = 20


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def run_in_daemon_thread[T](fn: Callable[[], T], *, name: str) -> T:
    """Run ``fn`` in a fresh daemon thread and await its result (context variables carried over)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = context.run(fn)
        except BaseException as exc:
            error = exc
        # RuntimeError: the loop closed while we computed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future


class _Running:
    def __init__(self, report: OperationReport) -> None:
        self.report = report
        self.cancel = CancelToken()
        self.task: asyncio.Task[None] | None = None
        self.failure_reason: str | None = None  # set when the worker itself stops the operation


class WorkerRuntime:
    """Runs the operations of one worker process and reports how they end."""

    def __init__(self, *, report_initial_backoff: float = 1.0, report_attempts: int = 10) -> None:
        self.backend: BackendClient | None = None
        self._reports: OrderedDict[str, OperationReport] = OrderedDict()
        self._current: _Running | None = None
        self._pushes: set[asyncio.Task[None]] = set()
        self._unreported: set[str] = set()
        self._report_delay = backoff_delays(report_initial_backoff, 30.0)
        self._report_attempts = report_attempts

    # --- queries ---------------------------------------------------------------------------

    @property
    def current_operation_id(self) -> str | None:
        return self._current.report.operation_id if self._current else None

    def get(self, operation_id: str) -> OperationReport:
        report = self._reports.get(operation_id)
        if report is None:
            raise OperationNotFoundError(
                f"operation {operation_id!r} is not known to this worker",
                details={"operation_id": operation_id},
            )
        return report

    def reports(self) -> list[OperationReport]:
        return list(reversed(self._reports.values()))

    def finished_reports(self, budget_bytes: int | None = None) -> list[OperationReport]:
        """Recent finished operations, newest first, for the registration payload.

        Every one carries its final status; results travel only while the backend has not
        acknowledged them (it stored the others) and only while the reports together stay within
        ``budget_bytes`` of JSON. A result can take most of the backend's request-body limit (a
        backtest's curves and trades), so two would get the registration refused; a completed
        report without its result is one the backend fetches whole from this worker (GET).
        """
        done = [r for r in self.reports() if r.status.is_terminal][:REPORTED_ON_REGISTRATION]
        carried: list[OperationReport] = []
        used = 0
        for report in done:
            status_only = report.without_result()
            size = len(status_only.model_dump_json())
            if report.operation_id in self._unreported and report.result is not None:
                whole = len(report.model_dump_json())
                if budget_bytes is None or used + whole <= budget_bytes:
                    status_only, size = report, whole
            carried.append(status_only)
            used += size
        return carried

    @property
    def unreported(self) -> set[str]:
        """Ids of finished operations whose final status the backend has not acknowledged yet."""
        return set(self._unreported)

    # --- commands --------------------------------------------------------------------------

    def start(self, operation_id: str, compute: Compute) -> StartAccepted:
        """Start ``compute`` as ``operation_id``; 503 when busy, idempotent for a repeated id."""
        if operation_id in self._reports:
            return StartAccepted(operation_id=operation_id, status=self._reports[operation_id].status.value)
        if self._current is not None:
            raise ServiceUnavailableError(
                f"worker is busy with operation {self._current.report.operation_id}",
                details={"current_operation_id": self._current.report.operation_id},
            )
        report = OperationReport(operation_id=operation_id, status=OperationStatus.RUNNING, started_at=_now())
        self._remember(report)
        running = _Running(report)
        self._current = running
        running.task = asyncio.create_task(self._run(running, compute), name=f"operation-{operation_id}")
        log.info("operation.started", operation_id=operation_id)
        return StartAccepted(operation_id=operation_id)

    async def cancel(
        self, operation_id: str, reason: str = "cancelled by user", wait_s: float = 2.0
    ) -> OperationReport:
        """Ask the operation to stop and wait briefly until it has; finished operations stay as they are."""
        report = self.get(operation_id)
        running = self._current
        if running is None or running.report.operation_id != operation_id or report.status.is_terminal:
            return report
        running.cancel.cancel(reason)
        log.info("operation.cancel_requested", operation_id=operation_id, reason=reason)
        if running.task is not None:
            await asyncio.wait({running.task}, timeout=wait_s)
        return self.get(operation_id)

    async def shutdown(self, budget_s: float) -> None:
        """Stop the running operation and report it (as failed: the worker, not the user, stopped it)."""
        running = self._current
        if running is not None and running.task is not None:
            running.failure_reason = "worker shut down (SIGTERM) before the operation finished"
            running.cancel.cancel(running.failure_reason)
            done, _ = await asyncio.wait({running.task}, timeout=budget_s)
            if not done:
                reason = f"{running.failure_reason}; its compute did not stop in time"
                self._finish(running, OperationStatus.FAILED, error=reason)
                running.task.cancel()
        # Pending final reports get a short last chance; the backend reconciles the rest on re-registration.
        if self._pushes:
            await asyncio.wait(self._pushes, timeout=min(budget_s, 5.0))
        for task in list(self._pushes):
            task.cancel()

    # --- internals ---------------------------------------------------------------------------

    def _remember(self, report: OperationReport) -> None:
        self._reports[report.operation_id] = report
        while len(self._reports) > HISTORY_SIZE:
            oldest = next(iter(self._reports))
            if self._current is not None and oldest == self._current.report.operation_id:
                break
            self._reports.pop(oldest)

    async def _run(self, running: _Running, compute: Compute) -> None:
        op_id = running.report.operation_id

        def progress(p: Progress) -> None:
            # The wire refuses NaN and the infinities (a diverged training's losses): send them as null.
            values = finite_json(p.to_dict())
            if values["percentage"] is None:
                values["percentage"] = running.report.progress.percentage
            running.report.progress = ProgressModel(**values)

        try:
            result = await run_in_daemon_thread(lambda: compute(progress, running.cancel), name=f"op-{op_id}")
        except OperationCancelled as exc:
            if running.failure_reason:
                self._finish(running, OperationStatus.FAILED, error=running.failure_reason)
            else:
                self._finish(running, OperationStatus.CANCELLED, error=str(exc) or "cancelled")
        except KtrdrError as exc:
            self._finish(running, OperationStatus.FAILED, error=exc.message)
        except Exception as exc:
            log.exception("operation.crashed", operation_id=op_id)
            self._finish(running, OperationStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        else:  # completed, even if a shutdown asked it to stop just as it finished
            self._finish(running, OperationStatus.COMPLETED, result=result)

    def _finish(
        self,
        running: _Running,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        report = running.report
        if report.status.is_terminal:
            return
        if status is OperationStatus.COMPLETED:
            report.progress = report.progress.model_copy(update={"percentage": 100.0})
        report.status = status
        report.result = finite_json(result)
        report.error_message = error
        report.completed_at = _now()
        if self._current is running:
            self._current = None
        log.info("operation.finished", operation_id=report.operation_id, status=status.value, error=error)
        self._unreported.add(report.operation_id)
        push = asyncio.get_running_loop().create_task(self._push(report.model_copy(deep=True)))
        self._pushes.add(push)
        push.add_done_callback(self._pushes.discard)

    async def _push(self, report: OperationReport) -> None:
        """PATCH the final status to the backend until it acknowledges (or says it has no such operation).

        A report too large for the backend (413) goes again at once as its status alone: the
        backend then fetches the result from this worker."""
        for attempt in range(self._report_attempts):
            outcome, reason = await self._send(report)
            if outcome is Outcome.TOO_LARGE and report.result is not None:
                log.warning("operation.report_too_large", operation_id=report.operation_id, reason=reason)
                report = report.without_result()
                outcome, reason = await self._send(report)
            if outcome not in (Outcome.RETRY, Outcome.UNAUTHORIZED):
                self._unreported.discard(report.operation_id)
                if outcome is not Outcome.OK:
                    log.warning("operation.report_refused", operation_id=report.operation_id, reason=reason)
                return
            await asyncio.sleep(self._report_delay(attempt))
        log.warning(
            "operation.report_gave_up", operation_id=report.operation_id, note="sent again on re-registration"
        )

    async def _send(self, report: OperationReport) -> tuple[Outcome, str]:
        if self.backend is None:
            return Outcome.RETRY, "no backend configured yet"
        return await self.backend.report(report)
