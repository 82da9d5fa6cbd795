"""The worker's side of the calls it makes to the backend (register, report status).

Thin and typed: each method maps one protocol call (see :mod:`ktrdr.protocol`) to a
result the caller can act on, and never raises for an HTTP status the protocol expects.
"""

from __future__ import annotations

from enum import Enum

import httpx

from ktrdr.protocol import OperationReport, WorkerRegistration
from ktrdr.web.bearer_auth import PresentToken
from ktrdr.web.tokens import BearerTokens


class Outcome(Enum):
    """What a call to the backend achieved."""

    OK = "ok"
    RETRY = "retry"  # backend unreachable, timing out, 5xx or 429: try again later
    GONE = "gone"  # 404: the backend does not know the worker or the operation
    UNAUTHORIZED = "unauthorized"  # 401/403: the backend does not accept our token (retried: it may rotate)
    TOO_LARGE = "too_large"  # 413: the body passed the backend's limit (send less)
    REJECTED = "rejected"  # any other 4xx: retrying the same request will not help


def classify(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status < 300:
        return Outcome.OK
    if status == 404:
        return Outcome.GONE
    if status in (401, 403):
        return Outcome.UNAUTHORIZED
    if status == 413:
        return Outcome.TOO_LARGE
    if status >= 500 or status in (408, 425, 429):
        return Outcome.RETRY
    return Outcome.REJECTED


class BackendClient:
    """Calls ``{backend_base_url}/api/v1/...`` with the bearer token when one is configured."""

    def __init__(
        self,
        backend_base_url: str,
        *,
        api_prefix: str = "/api/v1",
        tokens: BearerTokens | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._prefix = api_prefix
        self._http = httpx.AsyncClient(
            base_url=backend_base_url.rstrip("/"),
            auth=PresentToken(tokens or BearerTokens(None)),
            timeout=timeout,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: object) -> tuple[Outcome, httpx.Response | None]:
        try:
            response = await self._http.request(method, self._prefix + path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError:
            return Outcome.RETRY, None
        return classify(response), response

    async def register(self, registration: WorkerRegistration) -> tuple[Outcome, str]:
        """POST /workers/register; returns the outcome and, on failure, the backend's reason."""
        outcome, response = await self._call(
            "POST", "/workers/register", json=registration.model_dump(mode="json")
        )
        return outcome, _reason(response)

    async def report(self, report: OperationReport) -> tuple[Outcome, str]:
        """PATCH /operations/{id}/status with the operation's final report."""
        outcome, response = await self._call(
            "PATCH", f"/operations/{report.operation_id}/status", json=report.model_dump(mode="json")
        )
        return outcome, _reason(response)


def _reason(response: httpx.Response | None) -> str:
    if response is None:
        return "backend unreachable"
    if response.status_code < 300:
        return ""
    try:
        body = response.json()
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
