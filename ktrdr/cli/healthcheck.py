"""``ktrdr healthcheck [URL]``: the images' health probe (they have no curl and no shell).

Light on purpose (click and httpx only, no settings object): it runs every few seconds in every
container. With no URL it probes KTRDR_HEALTHCHECK_URL (``Settings.healthcheck_url``, set by the
images from the role table), else the backend's health route under KTRDR_API_CLIENT_BASE_URL.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ktrdr.cli.context import CliContext

DEFAULT_BACKEND = "http://127.0.0.1:8000/api/v1"


def default_health_url(api_base_url: str | None) -> str:
    explicit = os.environ.get("KTRDR_HEALTHCHECK_URL")
    if explicit:
        return explicit
    base = api_base_url or os.environ.get("KTRDR_API_CLIENT_BASE_URL") or DEFAULT_BACKEND
    return base.rstrip("/") + "/health"


def is_healthy_body(body: Any) -> bool:
    """A health body is healthy unless it says otherwise (``healthy: false`` or a failing ``status``)."""
    if not isinstance(body, dict):
        return False
    if body.get("healthy") is False:
        return False
    return str(body.get("status", "ok")).lower() not in {"unhealthy", "error", "down", "failed", "degraded"}


@click.command()
@click.argument("url", required=False)
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code speaks.")
@click.pass_context
def healthcheck(ctx: click.Context, url: str | None, timeout: float, quiet: bool) -> None:
    """Exit 0 when URL answers 2xx with a healthy JSON body, 1 otherwise."""
    import httpx

    options = ctx.find_object(CliContext)
    target = url or default_health_url(options.url if options else None)
    try:
        response = httpx.get(target, timeout=timeout)
        healthy = response.is_success and is_healthy_body(response.json())
        reason = f"HTTP {response.status_code}"
    except ValueError:
        healthy, reason = False, "body is not JSON"
    except httpx.HTTPError as exc:
        healthy, reason = False, f"{type(exc).__name__}: {exc}"
    if not quiet:
        click.echo(f"{'healthy' if healthy else 'unhealthy'}: {target} ({reason})", err=not healthy)
    ctx.exit(0 if healthy else 1)
