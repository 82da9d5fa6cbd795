"""Property-based contract check: requests generated from the OpenAPI spec never get a 5xx.

The backend runs under a real uvicorn server on 127.0.0.1 (no fake workers registered, so start
requests end in 4xx or 503, never in dispatch); every generated request is sent with httpx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from ktrdr.api.main import create_app  # noqa: E402
from tests.control.backend_fixtures import make_settings, seed_dataset, serve_in_thread  # noqa: E402

# The spec is static: it can be generated without starting the app.
schema = schemathesis.openapi.from_dict(create_app(make_settings(Path("/nonexistent"))).openapi())


@pytest.fixture(scope="module")
def live_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    seed_dataset(data_dir)
    with serve_in_thread(create_app(make_settings(data_dir, worker_health_check_interval=1.0))) as url:
        yield url


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def _send(http: httpx.Client, kwargs: dict[str, Any]) -> httpx.Response:
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content"] = data if isinstance(data, (bytes, str)) else None
        if kwargs["content"] is None:
            kwargs["data"] = data
    kwargs.pop("cookies", None)  # the spec declares no cookie parameters
    # The spec declares the bearer scheme; this backend has no token, so a generated one only
    # risks a header value httpx itself refuses to send.
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
    kwargs["headers"] = headers
    kwargs.pop("verify", None)
    kwargs.pop("timeout", None)
    return http.request(**kwargs)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_generated_requests_never_get_a_server_error(
    case: Any, live_backend: str, http: httpx.Client
) -> None:
    response = _send(http, case.as_transport_kwargs(base_url=live_backend))
    assert response.status_code < 500 or (
        response.status_code == 503 and response.json()["error"]["code"] == "NO_WORKER_AVAILABLE"
    ), f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert body["success"] is False and set(body["error"]) == {"code", "message", "details"}
