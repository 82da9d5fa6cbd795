"""Health, docs and the no-heavy-imports guarantee of the backend app."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.control.backend_fixtures import Harness


async def test_health_reports_database_and_workers(backend: Harness) -> None:
    response = await backend.client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["workers"]["total"] == 0
    assert body["version"]


async def test_openapi_and_docs_are_under_the_prefix(backend: Harness) -> None:
    spec = (await backend.client.get("/api/v1/openapi.json")).json()
    paths = set(spec["paths"])
    for expected in (
        "/api/v1/health",
        "/api/v1/workers/register",
        "/api/v1/workers",
        "/api/v1/workers/{worker_id}",
        "/api/v1/operations",
        "/api/v1/operations/{operation_id}",
        "/api/v1/operations/{operation_id}/status",
        "/api/v1/trainings/start",
        "/api/v1/backtests/start",
        "/api/v1/strategies",
        "/api/v1/strategies/{name}",
        "/api/v1/strategies/validate",
        "/api/v1/data",
        "/api/v1/data/{symbol}/{timeframe}",
        "/api/v1/models",
        "/api/v1/models/{strategy}/{timeframe}",
    ):
        assert expected in paths
    assert (await backend.client.get("/api/v1/docs")).status_code == 200


async def test_metrics_count_requests_operations_and_workers(backend: Harness) -> None:
    await backend.client.get("/api/v1/health")
    await backend.client.get("/api/v1/operations/op_nope")
    text = (await backend.client.get("/metrics")).text
    assert 'ktrdr_http_requests_total{method="GET",route="/api/v1/health",status="200"} 1.0' in text
    # labelled by the route's template, convertor left out, never by the id
    one = 'route="/api/v1/operations/{operation_id}",status="404"} 1.0'
    assert f'ktrdr_http_requests_total{{method="GET",{one}' in text
    assert 'ktrdr_operations{status="running"} 0.0' in text
    assert 'ktrdr_workers{status="available"} 0.0' in text


def test_importing_the_app_loads_no_numeric_or_heavy_modules() -> None:
    code = (
        "import json, sys; import ktrdr.api.main as m; "
        "assert m.app is not None; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    modules = set(json.loads(out))
    loaded = {name.split(".")[0] for name in modules}
    assert not loaded & {"torch", "numpy", "pandas"}
    # The CLI's charts (the report extra) never load in the backend.
    assert not loaded & {"plotly", "plotille", "narwhals"}
    assert not [name for name in modules if name.startswith("ktrdr.report")]
    # Kept out of import time on purpose (loaded by the lifespan or the first request):
    assert not loaded & {"sqlalchemy", "alembic", "structlog", "rich", "prometheus_client", "httpx"}
