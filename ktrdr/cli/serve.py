"""``ktrdr serve ROLE``: run the backend or a worker under uvicorn (what the images run)."""

from __future__ import annotations

import os

import click

# The ASGI app of each server role; tests/test_roles.py checks this against pyproject's role table.
APPS: dict[str, str] = {
    "backend": "ktrdr.api.main:app",
    "backtest-worker": "ktrdr.worker.backtest_worker:app",
    "training-worker": "ktrdr.worker.training_worker:app",
}
WORKER_ROLES = ("backtest-worker", "training-worker")
# uvicorn stops waiting for open requests after this; workers then stop their operation
# (see ktrdr.worker.app).
GRACEFUL_SHUTDOWN_S = 5


@click.command()
@click.argument("role", type=click.Choice(list(APPS)))
@click.option("--host", help="Interface to bind (default 127.0.0.1; images pass 0.0.0.0).")
@click.option("--port", type=int, help="Port (default: KTRDR_API_PORT / KTRDR_WORKER_PORT, else the role's).")
def serve(role: str, host: str | None, port: int | None) -> None:
    """Run one server ROLE: backend, backtest-worker or training-worker."""
    from ktrdr.settings import DEFAULT_PORTS, get_settings

    settings = get_settings()
    if role in WORKER_ROLES:
        from ktrdr.errors import MissingDependencyError
        from ktrdr.worker.deps_check import check_ml_dependencies

        try:
            check_ml_dependencies(role)
        except MissingDependencyError as exc:
            raise click.ClickException(exc.message) from None
        port = port or settings.worker_port or DEFAULT_PORTS[role]
        host = host or "127.0.0.1"
        # The worker advertises this port when it registers; it reads it from the settings.
        os.environ["KTRDR_WORKER_PORT"] = str(port)
    else:
        port = port or settings.api_port
        host = host or settings.api_host
        os.environ["KTRDR_API_PORT"] = str(port)
    get_settings.cache_clear()

    import uvicorn

    from ktrdr.logs import configure_logging

    configure_logging(get_settings())
    uvicorn.run(
        APPS[role],
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
