"""The backend's HTTP calls to one worker (health, start, operation status, cancel), per the protocol.

Every call takes the worker's ``endpoint_url`` and which of the backend's tokens to present to
that worker: the one it registered with (``token``, a :class:`ktrdr.web.tokens.TokenSlot`; None
when no token is configured). So a worker endpoint registered with the previous token never
receives the current one (docs/deploy.md, "Trust model"). One shared ``httpx.AsyncClient`` (with
an injectable transport for tests) serves all workers. It is made, and httpx imported (~0.05 s,
most of it httpx's command line pulling in rich), on the first call to a worker, not while the
backend starts. Transport failures surface as ``httpx.HTTPError``; answers the protocol does not
allow surface as :class:`WorkerError`; callers catch both with ``except call_errors()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ktrdr.errors import WorkerError
from ktrdr.protocol import OperationReport, OperationType, StartAccepted, WorkerHealth
from ktrdr.web.tokens import BearerTokens, TokenSlot

if TYPE_CHECKING:
    import httpx

START_PATHS: dict[OperationType, str] = {
    OperationType.TRAINING: "/training/start",
    OperationType.BACKTESTING: "/backtests/start",
}


def call_errors() -> tuple[type[Exception], ...]:
    """What a call to a worker raises when it fails: a transport error or a protocol violation.

    A function, for ``except call_errors():``, evaluated only when an exception gets there, by which
    time the call has made the client and imported httpx.
    """
    import httpx

    return (httpx.HTTPError, WorkerError)


@dataclass(frozen=True)
class StartOutcome:
    """How a worker answered a start request: accepted, busy (503), or refused for another reason."""

    accepted: bool
    busy: bool = False
    status_code: int = 200
    message: str = ""

    @property
    def token_refused(self) -> bool:
        """The worker does not accept our token (a misconfigured worker, not a bad request)."""
        return self.status_code in (401, 403)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "detail" in body:
            return str(body["detail"])[:500]
    return f"HTTP {response.status_code}"


def _parse[M: BaseModel](model: type[M], response: httpx.Response, what: str) -> M:
    try:
        return model.model_validate(response.json())
    except (ValueError, PydanticValidationError) as exc:
        raise WorkerError(
            f"worker answered {what} with a body the protocol does not allow",
            details={"url": str(response.request.url), "status": response.status_code},
        ) from exc


class WorkerClient:
    """Backend -> worker calls (see :mod:`ktrdr.protocol`)."""

    def __init__(
        self,
        *,
        tokens: BearerTokens | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.tokens = tokens or BearerTokens(None)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        """The shared client, made on the first call to a worker."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _auth(self, token: TokenSlot | None) -> dict[str, str]:
        value = self.tokens.token(token) if token is not None else None
        return {"Authorization": f"Bearer {value}"} if value else {}

    async def health(self, endpoint_url: str, *, token: TokenSlot | None) -> WorkerHealth:
        """The worker's health; the token tells the worker this is the backend's poll, not a probe."""
        response = await self._http.get(f"{endpoint_url.rstrip('/')}/health", headers=self._auth(token))
        if response.status_code != 200:
            raise WorkerError(
                f"worker health check answered HTTP {response.status_code}",
                details={"endpoint_url": endpoint_url, "status": response.status_code},
            )
        return _parse(WorkerHealth, response, "GET /health")

    async def start(
        self, endpoint_url: str, operation_type: OperationType, payload: BaseModel, *, token: TokenSlot | None
    ) -> StartOutcome:
        url = f"{endpoint_url.rstrip('/')}{START_PATHS[operation_type]}"
        response = await self._http.post(url, json=payload.model_dump(mode="json"), headers=self._auth(token))
        if response.status_code == 503:
            return StartOutcome(accepted=False, busy=True, status_code=503, message=_message(response))
        if response.status_code >= 300:
            return StartOutcome(accepted=False, status_code=response.status_code, message=_message(response))
        _parse(StartAccepted, response, f"POST {START_PATHS[operation_type]}")
        return StartOutcome(accepted=True, status_code=response.status_code)

    async def get_operation(
        self, endpoint_url: str, operation_id: str, *, token: TokenSlot | None, wait_s: float | None = None
    ) -> OperationReport | None:
        """The worker's report on ``operation_id``; None when the worker does not know it (404).

        ``wait_s`` overrides the client's timeout (progress pulls on a user's GET wait less).
        """
        kwargs: dict[str, Any] = {"timeout": wait_s} if wait_s is not None else {}
        response = await self._http.get(
            f"{endpoint_url.rstrip('/')}/api/v1/operations/{operation_id}",
            headers=self._auth(token),
            **kwargs,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise WorkerError(
                f"worker answered HTTP {response.status_code} for operation {operation_id}",
                details={"endpoint_url": endpoint_url, "status": response.status_code},
            )
        return _parse(OperationReport, response, "GET /api/v1/operations/{id}")

    async def cancel(
        self, endpoint_url: str, operation_id: str, reason: str, *, token: TokenSlot | None
    ) -> OperationReport | None:
        """Ask the worker to cancel; None when it does not know the operation (404)."""
        response = await self._http.delete(
            f"{endpoint_url.rstrip('/')}/api/v1/operations/{operation_id}/cancel",
            params={"reason": reason},
            headers=self._auth(token),
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise WorkerError(
                f"worker refused to cancel operation {operation_id}: {_message(response)}",
                details={"endpoint_url": endpoint_url, "status": response.status_code},
            )
        return _parse(OperationReport, response, "DELETE /api/v1/operations/{id}/cancel")
