"""The global options every command sees (``--url``, ``--token``, ``--json``) and the API client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ktrdr.cli.client import ApiClient


@dataclass
class CliContext:
    url: str | None = None
    token: str | None = None
    as_json: bool = False

    def base_url(self) -> str:
        """``--url`` / KTRDR_API_CLIENT_BASE_URL, else the settings default (the local backend)."""
        if self.url:
            return self.url.rstrip("/")
        from ktrdr.settings import get_settings

        return get_settings().api_client_base_url.rstrip("/")

    def client(self) -> ApiClient:
        from ktrdr.cli.client import ApiClient

        return ApiClient(self.base_url(), token=self.token)


def cli_context() -> CliContext:
    """The current invocation's :class:`CliContext` (a default one when a command runs on its own)."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    return obj if obj is not None else ctx.ensure_object(CliContext)
