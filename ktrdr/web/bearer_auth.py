"""The client side of the bearer token as a worker presents it to the backend.

A worker tries its current token and, on a 401, once its previous one, so that a rotation needs
no restart order (docs/deploy.md). The backend never falls back like this: it presents to each
worker only the token that worker registered with (:mod:`ktrdr.control.worker_client`). Kept
apart from :mod:`ktrdr.web.tokens` so that importing the backend's app loads no httpx.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ktrdr.web.tokens import BearerTokens


class PresentToken(httpx.Auth):
    """httpx auth for a worker's calls: the current token, then once the previous one on a 401."""

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
