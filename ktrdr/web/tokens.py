"""The bearer tokens every ktrdr server checks and every internal client presents.

One trust model for the backend and its workers (docs/deploy.md, "Trust model"):

- ``KTRDR_API_TOKEN`` is the token; ``KTRDR_API_TOKEN_PREVIOUS`` is one more that is still
  accepted while a new token rolls out. :class:`BearerTokens` checks a request's
  ``Authorization: Bearer ...`` header against both in constant time (every accepted token is
  compared, whichever matches).
- Internal calls (backend -> worker, worker -> backend) send the current token; a peer that still
  knows only the previous one answers 401, and :class:`ktrdr.web.bearer_auth.PresentToken`
  repeats the request once with the previous token. So the processes can restart with the new
  pair in any order, and the previous token can be dropped afterwards (the two-step procedure in
  docs/deploy.md).
- :func:`check_token_configured`: ``KTRDR_ENV=production`` refuses to start without a token, and
  no process starts with a token an HTTP header cannot carry (anything but visible ASCII).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pydantic import SecretStr

from ktrdr.errors import AuthenticationError, ConfigurationError
from ktrdr.settings import Settings


def _secret(value: SecretStr | None) -> str | None:
    return (value.get_secret_value() if value is not None else None) or None


def _digest(token: str) -> bytes:
    # Compared as digests: equal lengths, so not even a token's length shows in the timing.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class BearerTokens:
    """The tokens a process accepts (current first) and presents (the current one)."""

    current: str | None
    previous: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BearerTokens:
        return cls(_secret(settings.api_token), _secret(settings.api_token_previous))

    @property
    def configured(self) -> bool:
        return self.current is not None

    def accepted(self) -> tuple[str, ...]:
        return tuple(t for t in (self.current, self.previous) if t)

    def check(self, authorization: str | None) -> None:
        """Raise AuthenticationError (401) unless ``authorization`` is ``Bearer <an accepted token>``.

        Constant time in the token: digests of equal length are compared (hmac.compare_digest)
        with every accepted token, and the result is only looked at after all comparisons.
        """
        if not self.configured:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AuthenticationError("this request needs an 'Authorization: Bearer <token>' header")
        given_digest = _digest(given.strip())
        matches = [hmac.compare_digest(given_digest, _digest(token)) for token in self.accepted()]
        if not any(matches):
            raise AuthenticationError("the bearer token is not valid")


def _header_safe(token: str) -> bool:
    # Visible ASCII only: a header carries bytes, the guard reads them as latin-1 and httpx refuses
    # to send anything but ASCII, so any other character makes a token that can never match.
    return all("!" <= char <= "~" for char in token)


def check_token_configured(settings: Settings, process: str) -> None:
    """Refuse production without a token, a previous token without a current one, and a token
    that an HTTP header cannot carry."""
    tokens = BearerTokens.from_settings(settings)
    for variable, token in (
        ("KTRDR_API_TOKEN", tokens.current),
        ("KTRDR_API_TOKEN_PREVIOUS", tokens.previous),
    ):
        if token is not None and not _header_safe(token):
            raise ConfigurationError(
                f"{variable} holds a character an HTTP header cannot carry: use visible ASCII only "
                "(letters, digits, punctuation; no spaces), such as the output of `openssl rand -hex 32`"
            )
    if settings.env == "production" and not tokens.configured:
        raise ConfigurationError(
            f"KTRDR_ENV=production requires KTRDR_API_TOKEN: the {process} would accept requests "
            "from anyone who can reach it"
        )
    if tokens.previous and not tokens.configured:
        raise ConfigurationError(
            "KTRDR_API_TOKEN_PREVIOUS is set but KTRDR_API_TOKEN is not: set the new token too "
            "(rotation keeps the previous token alongside the current one)"
        )
