"""The bearer tokens every ktrdr server checks and every internal client presents.

One trust model for the backend and its workers (docs/deploy.md, "Trust model"):

- ``KTRDR_API_TOKEN`` is the token; ``KTRDR_API_TOKEN_PREVIOUS`` is one more that is still
  accepted while a new token rolls out. :class:`BearerTokens` checks a request's
  ``Authorization: Bearer ...`` header against both in constant time (every accepted token is
  compared, whichever matches) and says which of the two it was (:class:`TokenSlot`).
- A worker presents its current token to the backend and, on a 401, once its previous one
  (:class:`ktrdr.web.bearer_auth.PresentToken`). The backend presents to each worker only the
  token that worker registered with: a worker endpoint registered by someone who holds only the
  previous token never receives the current one. What the backend keeps of that token is its
  :meth:`BearerTokens.fingerprint`, never the token itself.
- :func:`check_token_configured`: ``KTRDR_ENV=production`` refuses to start without a token, and
  no process starts with a token an HTTP header cannot carry (anything but visible ASCII).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from pydantic import SecretStr

from ktrdr.errors import AuthenticationError, ConfigurationError
from ktrdr.settings import Settings


def _secret(value: SecretStr | None) -> str | None:
    return (value.get_secret_value() if value is not None else None) or None


def _digest(token: str) -> bytes:
    # Compared as digests: equal lengths, so not even a token's length shows in the timing.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


# The fingerprint is scrypt with fixed parameters (about 16 MiB and a few tens of ms, once per token
# and process): it tells the configured tokens apart after a restart, and makes guessing a weak
# token from a copy of the database slow. Changing these parameters makes every stored
# fingerprint unknown, so workers register again (docs/deploy.md).
_FINGERPRINT_SALT = b"ktrdr worker registration token v1"
_FINGERPRINT_COST = {"n": 2**14, "r": 8, "p": 1, "dklen": 16}


class TokenSlot(StrEnum):
    """Which of a process's tokens a request presented."""

    CURRENT = "current"
    PREVIOUS = "previous"


@dataclass(frozen=True)
class BearerTokens:
    """The tokens a process accepts: the current one and, while rotating, the previous one."""

    current: str | None
    previous: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BearerTokens:
        return cls(_secret(settings.api_token), _secret(settings.api_token_previous))

    @property
    def configured(self) -> bool:
        return self.current is not None

    def token(self, slot: TokenSlot) -> str | None:
        return self.current if slot is TokenSlot.CURRENT else self.previous

    def match(self, authorization: str | None) -> TokenSlot | None:
        """Which accepted token ``authorization`` (``Bearer <token>``) presents, or None.

        Constant time in the token: digests of equal length are compared (hmac.compare_digest)
        with every accepted token, and the results are only looked at after all comparisons.
        """
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        given_digest = _digest(given.strip())
        matches = [
            (slot, hmac.compare_digest(given_digest, _digest(token)))
            for slot in TokenSlot
            if (token := self.token(slot))
        ]
        return next((slot for slot, matched in matches if matched), None)

    def check(self, authorization: str | None) -> TokenSlot | None:
        """The slot of the token ``authorization`` presents; AuthenticationError (401) when a token is
        configured and it presents none of them. None when no token is configured (all is open)."""
        if not self.configured:
            return None
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AuthenticationError("this request needs an 'Authorization: Bearer <token>' header")
        slot = self.match(authorization)
        if slot is None:
            raise AuthenticationError("the bearer token is not valid")
        return slot

    def fingerprint(self, slot: TokenSlot | None) -> str | None:
        """What the backend stores of the token a worker registered with (None: no token)."""
        token = self.token(slot) if slot is not None else None
        return self._fingerprints.get(token) if token else None

    def slot_of(self, fingerprint: str | None) -> TokenSlot | None:
        """The configured token a stored fingerprint belongs to; None when none does."""
        if fingerprint is None:
            return None
        return next((slot for slot in TokenSlot if self.fingerprint(slot) == fingerprint), None)

    @cached_property
    def _fingerprints(self) -> dict[str, str]:
        tokens = {t for t in (self.current, self.previous) if t}
        return {
            t: hashlib.scrypt(t.encode(), salt=_FINGERPRINT_SALT, **_FINGERPRINT_COST).hex() for t in tokens
        }


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
