"""The client side of the bearer token: what the backend and the workers present to each other.

Kept apart from :mod:`ktrdr.web.tokens` so that the backend's app imports httpx only when its
lifespan builds the worker client, not at import time (tests/api/test_api_smoke.py checks it).
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ktrdr.web.tokens import BearerTokens


class PresentToken(httpx.Auth):
    """httpx auth for internal calls: the current token, then once the previous one on a 401."""

    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._tokens.current is None:
            yield request
            return
        request.headers["Authorization"] = f"Bearer {self._tokens.current}"
        response = yield request
        if response.status_code == 401 and self._tokens.previous:
            request.headers["Authorization"] = f"Bearer {self._tokens.previous}"
            yield request
