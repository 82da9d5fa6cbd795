"""A pure-ASGI guard in front of every request of every ktrdr server: bearer token, content type, body size.

Checked in that order, before any route runs and before more of the body than the limit is read:

- **auth**: when a token is configured, every request the server's ``needs_token`` rule names
  needs ``Authorization: Bearer <token>`` (:class:`ktrdr.web.tokens.BearerTokens`, constant time).
  The backend protects every mutating request (POST, PUT, PATCH, DELETE) and leaves reads open; a
  worker protects every request except ``GET /health``. A refusal is logged without the header;
  an accepted request carries which token it was to its route (:func:`authenticated_slot`).
- **content type**: a request with a body must send the type its route takes (JSON by default;
  the raw-body routes name theirs), else 415.
- **size**: a body larger than its route's limit is refused with 413, on its Content-Length when
  it has one and otherwise as soon as the streamed bytes pass the limit. The body is buffered
  (it is never larger than the limit) and replayed to the app, which therefore never sees a
  partial upload.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ktrdr.errors import AuthenticationError, KtrdrError, PayloadTooLargeError, UnsupportedMediaTypeError
from ktrdr.logs import get_logger
from ktrdr.web.errors import ktrdr_error_response
from ktrdr.web.tokens import BearerTokens, TokenSlot

log = get_logger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = frozenset({"application/json"})

# (method, path) -> does this request need the token?
TokenRule = Callable[[str, str], bool]
AUTHENTICATED_AS = "ktrdr_authenticated_as"


def authenticated_slot(request: Request) -> TokenSlot | None:
    """Which of the server's tokens this request presented (None: no token is configured)."""
    slot: TokenSlot | None = getattr(request.state, AUTHENTICATED_AS, None)
    return slot


def mutating_requests(method: str, _path: str) -> bool:
    """The backend's rule: writes need the token, reads stay open."""
    return method in MUTATING_METHODS


def all_requests_except(*open_paths: str) -> TokenRule:
    """A worker's rule: everything needs the token except ``open_paths`` (its health probe)."""
    exempt = frozenset(open_paths)
    return lambda _method, path: path not in exempt


@dataclass(frozen=True)
class BodyRule:
    """Which content types a route takes and how large its body may be."""

    method: str
    path: re.Pattern[str]
    content_types: frozenset[str]
    max_bytes: int


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    message = email.message.Message()
    message["content-type"] = header
    return message.get_content_type().lower()


def _accepts(media_type: str, allowed: Iterable[str]) -> bool:
    allowed = set(allowed)
    if media_type in allowed:
        return True
    return (
        bool(allowed & JSON_TYPES) and media_type.startswith("application/") and media_type.endswith("+json")
    )


class RequestGuard:
    """The ASGI middleware that applies the token, content-type and size rules (module docstring)
    before the app sees a request, answering a refusal itself in the error envelope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: BearerTokens,
        needs_token: TokenRule,
        max_body_bytes: int,
        raw_rules: Iterable[BodyRule] = (),
    ) -> None:
        self.app = app
        self._tokens = tokens
        self._needs_token = needs_token
        self._max_body_bytes = max_body_bytes
        self._rules = tuple(raw_rules)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"].upper()
        path = scope.get("path", "")
        mutating = method in MUTATING_METHODS
        needs_token = self._tokens.configured and self._needs_token(method, path)
        if not (mutating or needs_token):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body: bytes | None = None
        try:
            if needs_token:
                self._check_token(scope, method, path, headers.get("authorization"))
            if mutating:
                body = await self._read_body(headers, self._rule_for(method, path), receive)
        except KtrdrError as exc:
            await ktrdr_error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive if body is None else _replay(body, receive), send)

    def _check_token(self, scope: Scope, method: str, path: str, authorization: str | None) -> None:
        try:
            slot = self._tokens.check(authorization)
        except AuthenticationError as exc:
            client = scope.get("client")
            log.warning(
                "request.unauthorized",
                method=method,
                path=path,
                client=client[0] if client else None,
                reason=exc.message,
            )
            raise
        # Which token it was, for the route (request.state): a worker's registration records it.
        scope.setdefault("state", {})[AUTHENTICATED_AS] = slot

    def _rule_for(self, method: str, path: str) -> BodyRule:
        for rule in self._rules:
            if rule.method == method and rule.path.fullmatch(path):
                return rule
        return BodyRule(method, re.compile(".*"), JSON_TYPES, self._max_body_bytes)

    async def _read_body(self, headers: dict[str, str], rule: BodyRule, receive: Receive) -> bytes:
        length_header = headers.get("content-length")
        declared: int | None = None
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                declared = None
        has_body = (declared or 0) > 0 or "chunked" in headers.get("transfer-encoding", "").lower()
        if has_body:
            _check_content_type(headers.get("content-type"), rule)
        if declared is not None and declared > rule.max_bytes:
            raise _too_large(rule.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.max_bytes:
                raise _too_large(rule.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not has_body:
            # A body without Content-Length or chunked framing (rare in HTTP/1.1): still type-checked.
            _check_content_type(headers.get("content-type"), rule)
        return body


def _check_content_type(header: str | None, rule: BodyRule) -> None:
    media_type = _media_type(header)
    if media_type is None or not _accepts(media_type, rule.content_types):
        raise UnsupportedMediaTypeError(
            f"content type {media_type or '(none)'!r} is not accepted here; "
            f"send one of {', '.join(sorted(rule.content_types))}",
            details={"content_type": media_type, "accepted": sorted(rule.content_types)},
        )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body exceeds the limit of {limit} bytes", details={"max_bytes": limit}
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
