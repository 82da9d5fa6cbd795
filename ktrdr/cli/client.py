"""The CLI's HTTP client for the backend API: error envelopes become one-line messages, never tracebacks."""

from __future__ import annotations

from typing import Any

import click
import httpx


class ApiError(click.ClickException):
    """An API call that failed; ``message`` is the envelope's message (or why the backend is unreachable)."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


def unwrap(body: Any) -> Any:
    """Return the payload of a ``{"success": true, "data": ...}`` answer, or the body itself."""
    if isinstance(body, dict) and "data" in body and body.get("success", True) is not False:
        return body["data"]
    return body


class ApiClient:
    """Synchronous calls to ``{base_url}{path}`` (``base_url`` ends in ``/api/v1``)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(f"the backend at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the backend at {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        if not response.content:
            return None
        try:
            return unwrap(response.json())
        except ValueError:
            raise ApiError(f"{method} {path}: the backend answered with a body that is not JSON") from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or f"HTTP {response.status_code}")
        problems = (error.get("details") or {}).get("errors")
        if isinstance(problems, list) and problems:
            message += "".join(f"\n  - {_problem(p)}" for p in problems)
        return ApiError(message, status_code=response.status_code, code=error.get("code"))
    if isinstance(body, dict) and "detail" in body:
        return ApiError(str(body["detail"]), status_code=response.status_code)
    status = response.status_code
    return ApiError(f"HTTP {status} from {response.request.url}", status_code=status)


def _problem(problem: Any) -> str:
    if isinstance(problem, dict):
        loc = problem.get("loc")
        loc_text = ".".join(str(p) for p in loc) if isinstance(loc, list) else str(loc or "")
        msg = problem.get("msg") or problem.get("message") or ""
        return f"{loc_text}: {msg}" if loc_text else str(msg)
    return str(problem)
