"""The backend app: ``create_app(settings)`` builds it, ``app`` is the one uvicorn serves.

Start-up (the lifespan) refuses production without a token, applies the database migrations
(only when the database is not at the shipped head), takes over the workers a previous process
registered, and starts the monitor that polls worker health and reconciles operations every
``worker_health_check_interval``. Shutdown stops the monitor and closes the HTTP client and the
database.

Importing this module loads no torch, numpy or pandas (tests/api/test_api_smoke.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ktrdr import __version__
from ktrdr.api.metrics import LazyMetrics, MetricsMiddleware
from ktrdr.api.routes import ROUTERS
from ktrdr.api.routes.strategies import YAML_TYPES
from ktrdr.api.state import Backend, get_backend
from ktrdr.control.migrations import HEAD_REVISION, ensure_sqlite_parent, upgrade_database
from ktrdr.logs import get_logger
from ktrdr.settings import Settings, get_settings
from ktrdr.web.errors import install_error_handlers
from ktrdr.web.guard import BodyRule, RequestGuard, mutating_requests
from ktrdr.web.openapi import publish_security_and_errors
from ktrdr.web.tokens import BearerTokens, check_token_configured

if TYPE_CHECKING:
    import httpx

log = get_logger(__name__)


def _raw_body_rules(settings: Settings) -> list[BodyRule]:
    prefix = re.escape(settings.api_prefix.rstrip("/"))
    return [
        BodyRule(
            "POST",
            re.compile(f"{prefix}/strategies/validate"),
            frozenset(YAML_TYPES),
            settings.max_body_bytes,
        ),
        BodyRule(
            "POST",
            # Any symbol, "/" and newlines included: its type refuses a bad one (400, not 415).
            re.compile(f"{prefix}/data/.+/[^/]+", re.DOTALL),
            frozenset({"text/csv"}),
            settings.max_upload_bytes,
        ),
    ]


async def _start(
    app: FastAPI, settings: Settings, worker_transport: httpx.AsyncBaseTransport | None
) -> Backend:
    # Imported here, not at module level: SQLAlchemy is most of the app's start-up time, and httpx
    # loads on the first call to a worker.
    from ktrdr.control.dispatch import Dispatcher
    from ktrdr.control.lifecycle import OperationLifecycle
    from ktrdr.control.registry import WorkerRegistry
    from ktrdr.control.store import OperationStore
    from ktrdr.control.worker_client import WorkerClient

    check_token_configured(settings, "backend")
    db_url = settings.resolved_db_url
    store = OperationStore.from_url(db_url)
    ensure_sqlite_parent(db_url)
    # Usually the database is at the shipped head already: Alembic (~0.15 s to import) only runs
    # when it is not.
    if await store.schema_revision() != HEAD_REVISION:
        await asyncio.to_thread(upgrade_database, db_url)
    client = WorkerClient(
        tokens=BearerTokens.from_settings(settings),
        timeout=settings.worker_health_check_timeout,
        transport=worker_transport,
    )
    registry = WorkerRegistry(
        store,
        client,
        failures_threshold=settings.worker_health_check_failures,
        removal_threshold=settings.worker_removal_threshold,
    )
    await registry.load()
    lifecycle = OperationLifecycle(
        store,
        registry,
        client,
        health_interval=settings.worker_health_check_interval,
        failures_threshold=settings.worker_health_check_failures,
    )
    return Backend(
        settings=settings,
        store=store,
        client=client,
        registry=registry,
        lifecycle=lifecycle,
        dispatcher=Dispatcher(store, registry, client),
        metrics=app.state.metrics.metrics,
    )


def create_app(
    settings: Settings | None = None, *, worker_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the backend app; ``worker_transport`` replaces the network for calls to workers (tests)."""
    resolved = settings or get_settings()
    prefix = resolved.api_prefix.rstrip("/")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = await _start(app, resolved, worker_transport)
        app.state.backend = backend
        monitor = asyncio.create_task(backend.lifecycle.run(), name="ktrdr-monitor")
        log.info("backend.started", version=__version__, db=_redacted(resolved.resolved_db_url))
        try:
            yield
        finally:
            app.state.backend = None
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            await backend.client.aclose()
            await backend.store.close()
            log.info("backend.stopped")

    app = FastAPI(
        title="ktrdr backend",
        version=__version__,
        description="Control plane of ktrdr: operations, workers, strategies, data and models.",
        openapi_url=f"{prefix}/openapi.json",
        docs_url=f"{prefix}/docs",
        redoc_url=f"{prefix}/redoc",
        lifespan=lifespan,
    )
    app.state.settings = resolved
    app.state.backend = None
    metrics = LazyMetrics()
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix=prefix)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        backend = get_backend(request)
        backend.metrics.set_operations(await backend.store.count_by_status())
        backend.metrics.set_workers(backend.registry.summary())
        return Response(generate_latest(backend.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestGuard,
        tokens=BearerTokens.from_settings(resolved),
        needs_token=mutating_requests,
        max_body_bytes=resolved.max_body_bytes,
        raw_rules=_raw_body_rules(resolved),
    )
    publish_security_and_errors(app, mutating_requests)
    app.add_middleware(MetricsMiddleware, holder=metrics, api_prefix=prefix)
    return app


def _redacted(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db_url).render_as_string(hide_password=True)


app = create_app()
