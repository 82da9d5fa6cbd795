"""The exception hierarchy and its single mapping to HTTP status codes and the error envelope.

Every error a user can cause is a :class:`KtrdrError` subclass carrying a stable machine-readable
``code``, a human message and optional ``details``. The API turns any of them into::

    {"success": false, "error": {"code": "...", "message": "...", "details": {...}}}

with the class's ``status_code``; nothing else decides statuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The pydantic error type of a name refused by ktrdr.names (mapped to 400 INVALID_NAME below).
INVALID_NAME_TYPE = "invalid_name"


class KtrdrError(Exception):
    """Base class: an error with an HTTP status, a stable code and structured details."""

    status_code: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_envelope(self) -> dict[str, Any]:
        return error_envelope(self.code, self.message, self.details)


def error_envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one JSON shape every error response has."""
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


# --- 4xx: the caller's input -------------------------------------------------------------------


class BadRequestError(KtrdrError):
    status_code = 400
    code = "BAD_REQUEST"


class InvalidNameError(BadRequestError):
    """A symbol, timeframe, strategy or model name that is malformed or path-like (``../x``)."""

    code = "INVALID_NAME"


class InvalidDateRangeError(BadRequestError):
    code = "INVALID_DATE_RANGE"


class AuthenticationError(KtrdrError):
    status_code = 401
    code = "UNAUTHORIZED"


class NotFoundError(KtrdrError):
    status_code = 404
    code = "NOT_FOUND"


class DataNotFoundError(NotFoundError):
    code = "DATA_NOT_FOUND"


class StrategyNotFoundError(NotFoundError):
    code = "STRATEGY_NOT_FOUND"


class ModelNotFoundError(NotFoundError):
    code = "MODEL_NOT_FOUND"


class OperationNotFoundError(NotFoundError):
    code = "OPERATION_NOT_FOUND"


class WorkerNotFoundError(NotFoundError):
    code = "WORKER_NOT_FOUND"


class ConflictError(KtrdrError):
    status_code = 409
    code = "CONFLICT"


class PayloadTooLargeError(KtrdrError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(KtrdrError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class ValidationError(KtrdrError):
    """Well-formed request whose content is invalid (422)."""

    status_code = 422
    code = "VALIDATION_ERROR"


class DataValidationError(ValidationError):
    """OHLCV data that breaks an invariant (unsorted, duplicate, NaN, high < low, price <= 0...)."""

    code = "INVALID_DATA"


class StrategyValidationError(ValidationError):
    """Strategy YAML that does not parse or does not match the schema; details name each bad key."""

    code = "INVALID_STRATEGY"


# --- 5xx: the system -----------------------------------------------------------------------------


class ServiceUnavailableError(KtrdrError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"


class NoWorkerAvailableError(ServiceUnavailableError):
    code = "NO_WORKER_AVAILABLE"


class WorkerError(KtrdrError):
    """A worker answered, but not as the protocol says (bad gateway)."""

    status_code = 502
    code = "WORKER_ERROR"


class MissingDependencyError(KtrdrError):
    """A process was started in an environment that lacks its heavy dependencies (torch, numpy...)."""

    code = "MISSING_DEPENDENCY"


class ConfigurationError(KtrdrError):
    """A process was started with settings it refuses to run with (e.g. production without a token)."""

    code = "CONFIGURATION_ERROR"


# --- request validation --------------------------------------------------------------------------


def request_validation_error(errors: Sequence[Mapping[str, Any]]) -> KtrdrError:
    """A request that failed schema validation (pydantic's error list), as one error of ours.

    400 INVALID_NAME when any name was refused (its field named first), else 422 VALIDATION_ERROR.
    Each error keeps only its location, message and type: the input itself may be huge, binary or
    secret, and is never echoed.
    """
    listed = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
    refused = [e for e in listed if e["type"] == INVALID_NAME_TYPE]
    if refused:
        first = refused[0]
        # ["body", "model_path"] -> "model_path"; ["path", "operation_id"] -> "operation_id"
        field = ".".join(first["loc"][1:]) or ".".join(first["loc"])
        return InvalidNameError(
            f"{field}: {first['msg']}",
            details={"field": field, "in": first["loc"][0] if first["loc"] else "", "errors": listed},
        )
    where = ", ".join(".".join(e["loc"]) + f": {e['msg']}" for e in listed[:5])
    return ValidationError(f"invalid request: {where}", details={"errors": listed})
