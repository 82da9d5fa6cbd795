"""Who a worker is (id, public URL) and how it stays registered with the backend.

A worker registers in the background as soon as it starts serving, retrying with jittered
exponential backoff (1 s doubling to 30 s; a 503 from a backend that is starting or stopping is
just another retry). A backend that refuses the worker's token (401) is logged as exactly that,
at error level on every attempt, and retried the same way: the worker idles, but stays ready for
the moment the tokens agree (a rotation finishing, a fixed secret). A registration too large for
the backend (413) goes again at once without results (the backend fetches those).

Afterwards it watches the backend's health polls (with a token configured, only a ``GET /health``
that carries a valid token counts: container probes carry none). When none has arrived for more
than three health intervals it registers again, carrying its current operation and its finished
operations so the backend can reconcile them: the backend restarted and forgot it, removed it
after a silence, or holds it with a token it no longer accepts (docs/deploy.md, "Rotating the
token"). Registering is idempotent, so a backend that was only slow loses nothing.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import socket
import time
from collections.abc import Callable

import structlog

from ktrdr.errors import ConfigurationError, InvalidNameError
from ktrdr.names import WORKER_ID, check_name
from ktrdr.protocol import WorkerRegistration, WorkerType
from ktrdr.settings import Settings
from ktrdr.worker.backend_client import BackendClient, Outcome

log = structlog.get_logger(__name__)


def default_worker_id(worker_type: WorkerType, hostname: str | None = None) -> str:
    """``{type}-{hostname}-{hex6}``, with the hostname reduced to the characters ids allow."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", hostname or socket.gethostname()).strip("-.") or "host"
    return f"{worker_type.value}-{host[:64]}-{secrets.token_hex(3)}"


def resolve_worker_id(settings: Settings, worker_type: WorkerType) -> str:
    """KTRDR_WORKER_ID when set (ConfigurationError unless the backend would take it), else a default."""
    if not settings.worker_id:
        return default_worker_id(worker_type)
    try:
        return check_name(settings.worker_id, WORKER_ID, field="KTRDR_WORKER_ID")
    except InvalidNameError as exc:
        raise ConfigurationError(f"KTRDR_WORKER_ID: {exc.message}", details=exc.details) from exc


def resolve_endpoint_url(settings: Settings, port: int) -> str:
    """KTRDR_WORKER_PUBLIC_BASE_URL when set (containers behind a service name), else host:port."""
    if settings.worker_public_base_url:
        return settings.worker_public_base_url.rstrip("/")
    return f"http://{settings.worker_host}:{port}"


def backoff_delays(initial: float = 1.0, maximum: float = 30.0) -> Callable[[int], float]:
    """attempt -> seconds: ``initial * 2**attempt`` capped at ``maximum``, jittered down by up to half."""

    def delay(attempt: int) -> float:
        base = min(maximum, initial * (2 ** min(attempt, 30)))
        return base * random.uniform(0.5, 1.0)

    return delay


class Registrar:
    """Registers the worker and keeps it registered (see the module docstring)."""

    def __init__(
        self,
        client: BackendClient,
        registration: Callable[[], WorkerRegistration],
        *,
        health_interval: float,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._registration = registration
        self._health_interval = health_interval
        self._delay = backoff_delays(initial_backoff, max_backoff)
        self._clock = clock
        self.registered = asyncio.Event()
        self.registrations = 0
        self._last_polled = clock()

    def health_checked(self) -> None:
        """The backend polled us (the health route calls this only for the backend's own poll)."""
        self._last_polled = self._clock()

    @property
    def silent_for(self) -> float:
        """Seconds since the backend last polled us (or accepted our registration)."""
        return self._clock() - self._last_polled

    async def register(self) -> None:
        """Register, retrying until the backend accepts (never gives up: a worker without a backend idles)."""
        attempt = 0
        while True:
            payload = self._registration()
            outcome, reason = await self._client.register(payload)
            if outcome is Outcome.TOO_LARGE and any(
                r.result is not None for r in payload.completed_operations
            ):
                # The backend's limit is below what this worker budgets for: statuses only, at once.
                log.warning("worker.registration_too_large", reason=reason, note="sent again without results")
                payload = payload.model_copy(
                    update={
                        "completed_operations": [r.without_result() for r in payload.completed_operations]
                    }
                )
                outcome, reason = await self._client.register(payload)
            if outcome is Outcome.OK:
                self.registrations += 1
                self._last_polled = self._clock()
                self.registered.set()
                log.info(
                    "worker.registered",
                    worker_id=payload.worker_id,
                    endpoint_url=payload.endpoint_url,
                    current_operation_id=payload.current_operation_id,
                    completed_operations=len(payload.completed_operations),
                )
                return
            wait = self._delay(attempt)
            if outcome is Outcome.UNAUTHORIZED:
                log.error(
                    "worker.token_refused",
                    message="the backend refused this worker's token: KTRDR_API_TOKEN must be the "
                    "backend's token (or, during a rotation, its previous one)",
                    reason=reason,
                    backend=self._client.base_url,
                    retry_s=round(wait, 2),
                )
            else:
                level = log.error if outcome is Outcome.REJECTED else log.warning
                level(
                    "worker.registration_failed", reason=reason, outcome=outcome.value, retry_s=round(wait, 2)
                )
            attempt += 1
            await asyncio.sleep(wait)

    async def keep_registered(self) -> bool:
        """Register again when the backend has not polled us for more than three health intervals;
        True when it did."""
        if self.silent_for <= 3 * self._health_interval:
            return False
        log.warning(
            "worker.not_polled",
            silent_for_s=round(self.silent_for, 1),
            note="registering again: the backend restarted, forgot this worker or cannot call it",
        )
        self.registered.clear()
        await self.register()
        return True

    async def run(self) -> None:
        """Register, then keep registered (:meth:`keep_registered` every interval). Runs until cancelled."""
        await self.register()
        while True:
            await asyncio.sleep(self._health_interval)
            await self.keep_registered()
