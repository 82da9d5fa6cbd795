"""Turns every error of every ktrdr server into the one envelope ``{"success": false, "error": {...}}``.

ktrdr errors keep their own status and code; FastAPI's request validation becomes 400
INVALID_NAME when a name was refused (ktrdr.names), else 422 VALIDATION_ERROR, each with the
field's location (:func:`ktrdr.errors.request_validation_error`); Starlette's HTTP errors
(unknown route, wrong method) keep their status; anything else is a 500 whose traceback is
logged and never sent. A refused request is logged with its method, path, code and field: never
its headers (the token) nor its body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ktrdr.errors import KtrdrError, error_envelope, request_validation_error
from ktrdr.logs import get_logger

log = get_logger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def error_response(
    status_code: int, envelope: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status_code, content=envelope, headers=headers)


def ktrdr_error_response(exc: KtrdrError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return error_response(exc.status_code, exc.to_envelope(), headers)


async def _on_ktrdr_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KtrdrError)
    return ktrdr_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = request_validation_error(exc.errors())
    log.info(
        "request.invalid",
        method=request.method,
        path=request.url.path,
        status=error.status_code,
        code=error.code,
        fields=[".".join(e["loc"]) for e in error.details["errors"][:5]],
    )
    return ktrdr_error_response(error)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    message = str(exc.detail) if exc.detail else code.replace("_", " ").lower()
    return error_response(exc.status_code, error_envelope(code, message), dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request.unhandled_error", method=request.method, path=request.url.path, exc_info=exc)
    return error_response(500, error_envelope("INTERNAL_ERROR", "internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KtrdrError, _on_ktrdr_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
