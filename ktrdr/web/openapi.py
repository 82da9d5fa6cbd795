"""What the OpenAPI documents of the backend and the workers say beyond FastAPI's defaults.

The same rule that the guard enforces (:data:`ktrdr.web.guard.TokenRule`) marks the operations
that need the bearer token, and every error answer is documented as the one envelope: 400 (a
refused name, ``INVALID_NAME``) and 422 on operations that take input, 401 on those the token
covers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ktrdr.web.guard import TokenRule

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["INVALID_NAME", "VALIDATION_ERROR", "UNAUTHORIZED"]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
    },
}
_ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_INPUT_ERRORS = {
    "400": "a name (strategy, symbol, timeframe, model path or version, operation or worker id) "
    "it cannot safely take: INVALID_NAME, details.field names the field",
    "422": "a field that does not validate: VALIDATION_ERROR, details.errors[].loc names each",
}


def publish_security_and_errors(app: FastAPI, needs_token: TokenRule) -> None:
    """Make ``app.openapi()`` document the bearer token (where ``needs_token`` says) and the envelope."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
        components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if operation.get("parameters") or operation.get("requestBody"):
                    for status, description in _INPUT_ERRORS.items():
                        responses[status] = {"description": description, "content": _ENVELOPE}
                if needs_token(method.upper(), path):
                    operation["security"] = [{"bearer": []}]
                    responses["401"] = {
                        "description": "no valid 'Authorization: Bearer <token>' header: UNAUTHORIZED",
                        "content": _ENVELOPE,
                    }
        components["schemas"].pop("HTTPValidationError", None)
        components["schemas"].pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
