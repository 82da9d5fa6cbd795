"""The worker base app shared by the backtest and the training worker.

:func:`create_worker_app` returns a FastAPI app with the endpoints every worker has (``/``,
``/health``, operation status, list and cancel) and a lifespan that refuses production without a
token and a ``KTRDR_WORKER_ID`` the backend would refuse, checks the compute dependencies,
registers with the backend in the background, keeps the registration alive and, on shutdown
(SIGTERM through uvicorn), stops the running operation and reports its final status. Each worker
module adds its own ``POST .../start`` route, handing :meth:`WorkerRuntime.start` the compute to
run.

A worker trusts exactly what the backend trusts: with a token configured, every route except
``GET /health`` (the probe of container runtimes and of the backend) needs it (the shared
:class:`ktrdr.web.guard.RequestGuard`), and errors use the backend's envelope
(:mod:`ktrdr.web.errors`): a refused name is 400 INVALID_NAME, as on the backend. ``GET /health``
answers anyone, but only a poll carrying a valid token (the backend's) keeps the worker from
registering again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import structlog
from fastapi import FastAPI, Query, Request

from ktrdr import __version__
from ktrdr.jobs import CancelToken, ProgressCallback
from ktrdr.names import OperationId, Text
from ktrdr.protocol import (
    OperationReport,
    StartAccepted,
    StrategyStart,
    WorkerHealth,
    WorkerRegistration,
    WorkerType,
)
from ktrdr.settings import Settings, get_settings
from ktrdr.web.errors import install_error_handlers
from ktrdr.web.guard import RequestGuard, all_requests_except
from ktrdr.web.openapi import publish_security_and_errors
from ktrdr.web.paths import name_param
from ktrdr.web.tokens import BearerTokens, check_token_configured
from ktrdr.worker.backend_client import BackendClient
from ktrdr.worker.registration import Registrar, resolve_endpoint_url, resolve_worker_id
from ktrdr.worker.runtime import WorkerRuntime

if TYPE_CHECKING:
    from ktrdr.strategy.schema import StrategyConfig

log = structlog.get_logger(__name__)

# Container runtimes give 30 s between SIGTERM and SIGKILL; stop well inside that.
SHUTDOWN_BUDGET_S = 20.0
# The one route open without a token: probes must work without the secret.
HEALTH_PATH = "/health"


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    worker_type: WorkerType
    service: str
    endpoint_url: str
    capabilities: dict[str, Any]


def worker_runtime(app: FastAPI) -> WorkerRuntime:
    runtime: WorkerRuntime = app.state.runtime
    return runtime


def worker_settings(app: FastAPI) -> Settings:
    settings: Settings = app.state.settings
    return settings


# compute(strategy, settings, progress, cancel) -> result; runs in the worker's compute thread
StrategyCompute = Callable[["StrategyConfig", Settings, ProgressCallback, CancelToken], dict[str, Any]]


def start_strategy_operation(
    request: Request, body: StrategyStart, compute: StrategyCompute
) -> StartAccepted:
    """What a worker's start route does: parse the strategy it was sent (a bad one is 422 now, not
    a failed operation later) and run ``compute`` on it as ``body.operation_id``. The result records
    the SHA-256 of the strategy text, so a report can say exactly what produced it."""
    from ktrdr.strategy.loader import parse_strategy, strategy_digest

    strategy = parse_strategy(body.strategy_yaml)
    settings = worker_settings(request.app)
    digest = strategy_digest(body.strategy_yaml)

    def run(progress: ProgressCallback, cancel: CancelToken) -> dict[str, Any]:
        return {**compute(strategy, settings, progress, cancel), "strategy_yaml_sha256": digest}

    return worker_runtime(request.app).start(body.operation_id, run)


def create_worker_app(
    *,
    worker_type: WorkerType,
    service: str,
    default_port: int,
    capabilities: Callable[[], dict[str, Any]] = dict,
    check_dependencies: Callable[[], None] | None = None,
    settings: Callable[[], Settings] = get_settings,
    backend_transport: httpx.AsyncBaseTransport | None = None,
    registration_backoff: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build a worker app; ``service`` is its role name (``backtest-worker`` / ``training-worker``).

    ``backend_transport``, ``registration_backoff`` and ``clock`` (what the registrar measures the
    backend's silence with) are for tests."""
    runtime = WorkerRuntime(report_initial_backoff=registration_backoff)
    cfg = settings()
    tokens = BearerTokens.from_settings(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_token_configured(cfg, service)
        worker_id = resolve_worker_id(cfg, worker_type)
        if check_dependencies is not None:
            check_dependencies()
        port = cfg.worker_port or default_port
        identity = WorkerIdentity(
            worker_id=worker_id,
            worker_type=worker_type,
            service=service,
            endpoint_url=resolve_endpoint_url(cfg, port),
            capabilities=capabilities(),
        )
        app.state.identity = identity
        client = BackendClient(
            cfg.backend_base_url,
            api_prefix=cfg.api_prefix,
            tokens=tokens,
            timeout=cfg.worker_health_check_timeout,
            transport=backend_transport,
        )
        runtime.backend = client
        # Results ride along only within three quarters of the body limit (the backend's, when both
        # read the same settings): the rest of the registration and the envelope fit in the margin.
        registration_budget = cfg.max_body_bytes * 3 // 4

        def registration() -> WorkerRegistration:
            return WorkerRegistration(
                worker_id=identity.worker_id,
                worker_type=worker_type,
                endpoint_url=identity.endpoint_url,
                capabilities=identity.capabilities,
                current_operation_id=runtime.current_operation_id,
                completed_operations=runtime.finished_reports(registration_budget),
            )

        registrar = Registrar(
            client,
            registration,
            health_interval=cfg.worker_health_check_interval,
            initial_backoff=registration_backoff,
            clock=clock,
        )
        app.state.registrar = registrar
        registering = asyncio.create_task(registrar.run(), name="worker-registration")
        log.info("worker.started", worker_id=identity.worker_id, service=service, url=identity.endpoint_url)
        try:
            yield
        finally:
            registering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registering
            await runtime.shutdown(SHUTDOWN_BUDGET_S)
            await client.aclose()
            log.info("worker.stopped", worker_id=identity.worker_id)

    app = FastAPI(title=f"ktrdr {service}", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.settings = cfg
    install_error_handlers(app)
    needs_token = all_requests_except(HEALTH_PATH)
    app.add_middleware(
        RequestGuard, tokens=tokens, needs_token=needs_token, max_body_bytes=cfg.max_body_bytes
    )
    publish_security_and_errors(app, needs_token)

    @app.get("/")
    async def root(request: Request) -> dict[str, Any]:
        identity: WorkerIdentity = request.app.state.identity
        return {
            "service": service,
            "version": __version__,
            "status": "operational",
            "worker_id": identity.worker_id,
        }

    @app.get(HEALTH_PATH)
    async def health(request: Request) -> WorkerHealth:
        identity: WorkerIdentity = request.app.state.identity
        # The backend's poll carries the token this worker registered with; container probes carry
        # none. Only the backend's poll says it still knows us (without a token, any poll does).
        if not tokens.configured or tokens.match(request.headers.get("authorization")) is not None:
            request.app.state.registrar.health_checked()
        current = runtime.current_operation_id
        return WorkerHealth(
            healthy=True,
            service=service,
            worker_id=identity.worker_id,
            worker_type=worker_type,
            worker_status="busy" if current else "idle",
            current_operation=current,
            timestamp=dt.datetime.now(dt.UTC),
        )

    @app.get("/api/v1/operations")
    async def list_operations() -> list[OperationReport]:
        return runtime.reports()

    one = "/api/v1/operations/" + name_param("operation_id")

    @app.get(one)
    async def get_operation(operation_id: OperationId) -> OperationReport:
        return runtime.get(operation_id)

    @app.delete(one + "/cancel")
    async def cancel_operation(
        operation_id: OperationId, reason: Annotated[Text, Query(max_length=500)] = "cancelled by user"
    ) -> OperationReport:
        return await runtime.cancel(operation_id, reason)

    return app
