"""The workers behind the token: every route but /health, both worker apps, served by uvicorn.

Each real worker app (backtest, training) runs with a current and a previous token, as during a
rotation. Every route answers 401 in the envelope without a token, with a wrong one, or with
another scheme, and lets the current and the previous token through; /health stays open. A
worker refuses to start in production without a token; a worker the backend refuses says so in
its log and keeps trying.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr
from worker_harness import (
    CURRENT,
    PREVIOUS,
    START_PATHS,
    FakeBackend,
    LiveWorker,
    create_worker,
    live_worker_settings,
    wait_until,
)

from ktrdr.errors import ConfigurationError

pytest.importorskip("torch")  # the worker apps check their compute dependencies at start-up


def routes_of(live: LiveWorker) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD aside)."""
    return {
        (method, route.path)
        for route in live.app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }


def example_requests(live: LiveWorker) -> dict[tuple[str, str], str]:
    """One concrete URL for each protected route template."""
    one = "/api/v1/operations/{operation_id:name}"
    return {
        ("GET", "/"): "/",
        ("GET", "/api/v1/operations"): "/api/v1/operations",
        ("GET", one): "/api/v1/operations/op_1",
        ("DELETE", one + "/cancel"): "/api/v1/operations/op_1/cancel",
        ("POST", live.start_path): live.start_path,
        ("GET", "/openapi.json"): "/openapi.json",
        ("GET", "/docs"): "/docs",
        ("GET", "/docs/oauth2-redirect"): "/docs/oauth2-redirect",
        ("GET", "/redoc"): "/redoc",
    }


def test_the_examples_cover_every_route_but_health(live: LiveWorker) -> None:
    assert routes_of(live) - {("GET", "/health")} == set(example_requests(live))


def test_health_is_open(live: LiveWorker) -> None:
    health = live.client.get("/health")
    assert health.status_code == 200 and health.json()["worker_id"] == live.settings.worker_id


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Bearer {CURRENT}x", f"Basic {CURRENT}", f"bearer{CURRENT}", "Bearer"],
)
def test_every_route_refuses_a_missing_or_wrong_token(live: LiveWorker, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for (method, _), url in example_requests(live).items():
        answer = live.client.request(method, url, headers=headers, json={} if method == "POST" else None)
        assert answer.status_code == 401, (method, url, answer.status_code)
        assert answer.json()["error"]["code"] == "UNAUTHORIZED"
        assert answer.headers["www-authenticate"] == "Bearer"
    assert live.client.get("/api/v1/operations", headers=live.authed()).json() == []  # nothing started


@pytest.mark.parametrize("token", [CURRENT, PREVIOUS])
def test_every_route_accepts_the_current_and_the_previous_token(live: LiveWorker, token: str) -> None:
    for (method, _), url in example_requests(live).items():
        answer = live.client.request(
            method, url, headers=live.authed(token), json={} if method == "POST" else None
        )
        # Past the guard: the route's own answer (an empty start body is 422, an unknown id 404).
        assert answer.status_code in (200, 404, 422), (method, url, answer.status_code, answer.text[:200])
        if answer.status_code >= 400:
            assert answer.json()["error"]["code"] in ("OPERATION_NOT_FOUND", "VALIDATION_ERROR")


def test_the_worker_presents_the_current_token_to_the_backend(live: LiveWorker) -> None:
    presented = {h.get("authorization") for _, path, _, h in live.backend.calls if path.endswith("/register")}
    assert presented == {f"Bearer {CURRENT}"}


def test_the_openapi_document_declares_the_bearer_scheme(live: LiveWorker) -> None:
    spec = live.client.get("/openapi.json", headers=live.authed()).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert "security" not in spec["paths"]["/health"]["get"]
    start = spec["paths"][live.start_path]["post"]
    assert start["security"] == [{"bearer": []}]
    assert {"400", "401", "422"} <= set(start["responses"])


@pytest.mark.parametrize("role", list(START_PATHS))
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_token": None, "api_token_previous": None}, "KTRDR_ENV=production requires KTRDR_API_TOKEN"),
        (
            {"env": "development", "api_token": None},
            "KTRDR_API_TOKEN_PREVIOUS is set but KTRDR_API_TOKEN is not",
        ),
        # An HTTP header carries ASCII: such a token could never be presented or matched.
        ({"api_token": SecretStr("tökén")}, "KTRDR_API_TOKEN holds a character"),
        (
            {"api_token_previous": SecretStr("old token")},
            "KTRDR_API_TOKEN_PREVIOUS holds a character",
        ),
    ],
)
async def test_a_worker_refuses_to_start_without_a_token(
    role: str, overrides: dict[str, object], message: str, tmp_path: Path
) -> None:
    backend = FakeBackend()
    app = create_worker(role, live_worker_settings(role, tmp_path, **overrides), backend)
    with pytest.raises(ConfigurationError, match=message):
        async with app.router.lifespan_context(app):
            pass
    assert backend.calls == []  # it never tried to register


def test_a_worker_refused_by_the_backend_says_so_and_keeps_trying(make_worker) -> None:
    refusals = 4
    backend = FakeBackend(register_statuses=[401] * refusals)
    with structlog.testing.capture_logs() as logs:
        w = make_worker(backend, api_token="not-the-backends")
        with w.client:
            wait_until(lambda: w.app.state.registrar.registered.is_set())
    refused = [e for e in logs if e["event"] == "worker.token_refused"]
    assert len(refused) == refusals
    assert all(e["log_level"] == "error" and "KTRDR_API_TOKEN" in e["message"] for e in refused)
    # It kept trying until the backend accepted (here: the 5th attempt), never giving up.
    assert len(backend.bodies("POST", "/register")) == refusals + 1
