"""The backend's registry of workers: who they are, whether they answer, whether they are free.

Identity (id, type, endpoint, capabilities) is persisted in the store, so a restarted backend
polls its workers at once instead of waiting for them to notice and re-register; health (status,
failures, current operation) lives in memory and is rebuilt by the first poll. Workers loaded at
start-up are ``temporarily_unavailable`` until they answer.

Each worker is called with the token it registered with, and no other (:meth:`token_for`): an
endpoint registered by someone who holds only the previous token never receives the current one.
The store keeps that token's fingerprint (:meth:`ktrdr.web.tokens.BearerTokens.fingerprint`), so a
restarted backend knows it again; a worker whose fingerprint matches none of the tokens this
process accepts (the token was changed meanwhile) is not called at all until it registers again,
which it does once our polls stop reaching it.

A worker that fails ``failures_threshold`` health checks in a row becomes
``temporarily_unavailable`` (never dispatched to); one that has not answered for
``removal_threshold`` seconds is forgotten (and would have to register again).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from ktrdr.control.models import utcnow
from ktrdr.control.store import OperationStore
from ktrdr.control.worker_client import WorkerClient, call_errors
from ktrdr.errors import WorkerError, WorkerNotFoundError
from ktrdr.logs import get_logger
from ktrdr.protocol import WorkerInfo, WorkerRegistration, WorkerStatus, WorkerType
from ktrdr.web.tokens import TokenSlot

log = get_logger(__name__)

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def has_gpu(worker: WorkerInfo) -> bool:
    return bool(worker.capabilities.get("gpu"))


class WorkerRegistry:
    """In-memory view of the workers, backed by the store for identity."""

    def __init__(
        self,
        store: OperationStore,
        client: WorkerClient,
        *,
        failures_threshold: int = 3,
        removal_threshold: float = 300.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._store = store
        self._client = client
        self._failures_threshold = max(1, failures_threshold)
        self._removal_threshold = removal_threshold
        self._clock = clock
        self._tokens = client.tokens
        self._workers: dict[str, WorkerInfo] = {}
        # When each worker was last seen answering, or first known to this process.
        self._seen_at: dict[str, dt.datetime] = {}
        # Which of our tokens each worker registered with (None: no token is configured). A worker
        # missing here was taken over with a token we no longer accept: it is never called.
        self._presented: dict[str, TokenSlot | None] = {}

    async def load(self) -> None:
        """Take over the workers a previous backend process registered (unverified until polled)."""
        unknown_token = []
        for stored in await self._store.load_workers():
            self._workers[stored.worker_id] = WorkerInfo(
                worker_id=stored.worker_id,
                worker_type=stored.worker_type,
                endpoint_url=stored.endpoint_url,
                status=WorkerStatus.TEMPORARILY_UNAVAILABLE,
                capabilities=stored.capabilities,
                registered_at=stored.registered_at,
            )
            self._seen_at[stored.worker_id] = self._clock()
            if not self._tokens.configured:
                self._presented[stored.worker_id] = None
            elif (slot := self._tokens.slot_of(stored.token_fingerprint)) is not None:
                self._presented[stored.worker_id] = slot
            else:
                unknown_token.append(stored.worker_id)
        if self._workers:
            log.info("registry.loaded", workers=sorted(self._workers))
        if unknown_token:
            log.warning(
                "registry.worker_token_not_accepted",
                workers=unknown_token,
                note="registered with a token no longer accepted: not called until they register again",
            )

    def token_for(self, worker_id: str) -> TokenSlot | None:
        """Which of our tokens to present to this worker: the one it registered with (None: no token
        is configured). WorkerError for a worker registered with a token we no longer accept."""
        if worker_id not in self._presented:
            raise WorkerError(
                f"worker {worker_id} registered with a token this backend no longer accepts; "
                "it is called again once it registers again",
                details={"worker_id": worker_id},
            )
        return self._presented[worker_id]

    async def register(self, registration: WorkerRegistration, *, token: TokenSlot | None) -> WorkerInfo:
        """Add or refresh a worker (idempotent: the same id updates the same entry); ``token`` is the
        one its registration presented, the only one it will be called with."""
        now = self._clock()
        previous = self._workers.get(registration.worker_id)
        status = WorkerStatus.BUSY if registration.current_operation_id else WorkerStatus.AVAILABLE
        info = WorkerInfo(
            worker_id=registration.worker_id,
            worker_type=registration.worker_type,
            endpoint_url=registration.endpoint_url.rstrip("/"),
            status=status,
            current_operation_id=registration.current_operation_id,
            capabilities=registration.capabilities,
            registered_at=previous.registered_at if previous else now,
            last_health_check=now,
            last_healthy_at=now,
            last_dispatched_at=previous.last_dispatched_at if previous else None,
            health_check_failures=0,
        )
        await self._store.save_worker(
            info.worker_id,
            info.worker_type,
            info.endpoint_url,
            info.capabilities,
            info.registered_at,
            token_fingerprint=self._tokens.fingerprint(token),
        )
        self._workers[info.worker_id] = info
        self._presented[info.worker_id] = token
        self._seen_at[info.worker_id] = now
        log.info(
            "registry.registered",
            worker_id=info.worker_id,
            worker_type=info.worker_type.value,
            endpoint_url=info.endpoint_url,
            again=previous is not None,
        )
        return info

    def find(self, worker_id: str) -> WorkerInfo | None:
        return self._workers.get(worker_id)

    def get(self, worker_id: str) -> WorkerInfo:
        worker = self._workers.get(worker_id)
        if worker is None:
            raise WorkerNotFoundError(
                f"worker {worker_id!r} is not registered", details={"worker_id": worker_id}
            )
        return worker

    def list_workers(
        self, worker_type: WorkerType | None = None, status: WorkerStatus | None = None
    ) -> list[WorkerInfo]:
        return [
            w
            for w in sorted(self._workers.values(), key=lambda w: w.worker_id)
            if (worker_type is None or w.worker_type == worker_type)
            and (status is None or w.status == status)
        ]

    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in WorkerStatus}
        for worker in self._workers.values():
            counts[worker.status.value] += 1
        return {"total": len(self._workers), **counts}

    def candidates(self, worker_type: WorkerType, *, prefer_gpu: bool = False) -> list[WorkerInfo]:
        """Available workers of the type, least recently dispatched first (GPU ones first if preferred)."""
        free = [
            w
            for w in self._workers.values()
            if w.worker_type == worker_type and w.status == WorkerStatus.AVAILABLE
        ]

        def order(w: WorkerInfo) -> tuple[bool, dt.datetime, str]:
            return (prefer_gpu and not has_gpu(w), w.last_dispatched_at or _EPOCH, w.worker_id)

        return sorted(free, key=order)

    def mark_dispatched(self, worker_id: str, operation_id: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.status = WorkerStatus.BUSY
            worker.current_operation_id = operation_id
            worker.last_dispatched_at = self._clock()

    def mark_busy(self, worker_id: str) -> None:
        """The worker said it is busy (a 503 on start): skip it until its next health check."""
        worker = self._workers.get(worker_id)
        if worker is not None and worker.status == WorkerStatus.AVAILABLE:
            worker.status = WorkerStatus.BUSY

    def mark_idle(self, worker_id: str | None, operation_id: str) -> None:
        """The operation ended: its worker is free again (if it was still running that operation)."""
        worker = self._workers.get(worker_id) if worker_id else None
        if worker is not None and worker.current_operation_id == operation_id:
            worker.current_operation_id = None
            if worker.status == WorkerStatus.BUSY:
                worker.status = WorkerStatus.AVAILABLE

    def is_lost(self, worker_id: str) -> bool:
        """True when the worker has failed enough health checks in a row to count as gone."""
        worker = self._workers.get(worker_id)
        return worker is None or worker.health_check_failures >= self._failures_threshold

    async def check(self, worker: WorkerInfo) -> bool:
        """Poll one worker's /health and update its status; True when it answered.

        The poll presents the worker's token: that is how the worker tells it from a probe. A
        worker we have no token for is not polled (and not counted as failing): it stays
        unavailable until it registers again, or is forgotten after the removal threshold."""
        if worker.worker_id not in self._presented:
            return False
        asked_at = self._clock()
        try:
            health = await self._client.health(worker.endpoint_url, token=self._presented[worker.worker_id])
        except call_errors() as exc:
            worker.last_health_check = self._clock()
            worker.health_check_failures += 1
            if worker.health_check_failures >= self._failures_threshold:
                if worker.status != WorkerStatus.TEMPORARILY_UNAVAILABLE:
                    log.warning(
                        "registry.worker_unavailable",
                        worker_id=worker.worker_id,
                        failures=worker.health_check_failures,
                        error=str(exc) or type(exc).__name__,
                    )
                worker.status = WorkerStatus.TEMPORARILY_UNAVAILABLE
            return False
        now = self._clock()
        worker.last_health_check = now
        worker.last_healthy_at = now
        worker.health_check_failures = 0
        self._seen_at[worker.worker_id] = now
        if health.worker_status == "busy":
            worker.status = WorkerStatus.BUSY
            worker.current_operation_id = health.current_operation
        elif worker.last_dispatched_at is not None and worker.last_dispatched_at > asked_at:
            # We dispatched to it while this answer was in flight: the "idle" is stale.
            worker.status = WorkerStatus.BUSY
        else:
            worker.status = WorkerStatus.AVAILABLE
            worker.current_operation_id = None
        return True

    async def check_all(self) -> None:
        """Poll every worker concurrently."""
        workers = list(self._workers.values())
        if workers:
            await asyncio.gather(*(self.check(w) for w in workers))

    async def remove_stale(self) -> list[str]:
        """Forget workers silent for longer than the removal threshold; returns their ids."""
        now = self._clock()
        stale = [
            wid
            for wid, w in self._workers.items()
            if w.status == WorkerStatus.TEMPORARILY_UNAVAILABLE
            and (now - self._seen_at.get(wid, now)).total_seconds() >= self._removal_threshold
        ]
        for wid in stale:
            del self._workers[wid]
            self._seen_at.pop(wid, None)
            self._presented.pop(wid, None)
            await self._store.delete_worker(wid)
            log.warning("registry.worker_removed", worker_id=wid, silent_for_s=self._removal_threshold)
        return stale
