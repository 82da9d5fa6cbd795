"""Prometheus metrics of one backend app: requests (count, latency), operations and workers by status.

Each app gets its own ``CollectorRegistry`` (tests build many apps in one process). Request
metrics are recorded by a pure-ASGI middleware labelled with the route template, never the raw
path, so ids do not explode the label set. Operation and worker gauges are refreshed when
``/metrics`` is scraped. prometheus-client is imported when the first request arrives, keeping
it out of the app's import time.
"""

from __future__ import annotations

import time
from functools import cached_property

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BackendMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ktrdr_http_requests",
            "HTTP requests handled, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ktrdr_http_request_duration_seconds",
            "Time to handle an HTTP request, by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.operations = Gauge(
            "ktrdr_operations", "Operations in the store, by status", ["status"], registry=self.registry
        )
        self.workers = Gauge(
            "ktrdr_workers", "Registered workers, by status", ["status"], registry=self.registry
        )

    def set_operations(self, counts: dict[str, int]) -> None:
        for status, n in counts.items():
            self.operations.labels(status=status).set(n)

    def set_workers(self, counts: dict[str, int]) -> None:
        for status, n in counts.items():
            if status != "total":
                self.workers.labels(status=status).set(n)


class LazyMetrics:
    """Builds the app's :class:`BackendMetrics` on first use."""

    @cached_property
    def metrics(self) -> BackendMetrics:
        return BackendMetrics()


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, holder: LazyMetrics, api_prefix: str = "") -> None:
        self.app = app
        self.holder = holder
        self.api_prefix = api_prefix.rstrip("/")

    def _route_label(self, scope: Scope) -> str:
        route = scope.get("route")
        # path_format drops the convertors ("/operations/{operation_id}", not "{operation_id:name}").
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template is None:
            return "<unmatched>"
        # A route included under the API prefix reports its path without that prefix.
        under_prefix = bool(self.api_prefix) and scope["path"].startswith(self.api_prefix + "/")
        if under_prefix and not template.startswith(self.api_prefix + "/"):
            template = self.api_prefix + template
        return str(template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = self._route_label(scope)
            method = scope["method"]
            metrics = self.holder.metrics
            metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            metrics.latency.labels(method=method, route=route).observe(time.perf_counter() - started)
