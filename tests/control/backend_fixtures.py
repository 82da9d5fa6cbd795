"""Fixtures shared by the backend's tests (api, control): a running app over fake workers.

Each of those directories' conftest.py imports the fixtures from here so pytest sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ktrdr.api.main import create_app
from ktrdr.settings import Settings
from tests.control.fake_worker import FakeWorkerPool

SAMPLE_CSV = "timestamp,open,high,low,close,volume\n" + "".join(
    f"2024-01-01T{h:02d}:00:00Z,1.1,1.2,1.0,1.15,100\n" for h in range(24)
)


PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}


async def _pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**PG_ADMIN, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server (its URL), dropped afterwards; skips without one."""
    pytest.importorskip("asyncpg", reason="PostgreSQL tests need the postgres extra (asyncpg)")
    name = f"ktrdr_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError) as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn (lifespan on) on a free loopback port; yields its base URL.

    A real server decodes the path once, as in production (Starlette's TestClient decodes it
    twice, which turns ``%252e`` into ``.``).
    """
    import uvicorn

    from ktrdr.cli.stack import free_ports

    (port,) = free_ports(1)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "env": "development",
        "api_token": None,
        "db_url": None,
        "models_dir": None,
        "strategies_dir": None,
        "worker_health_check_interval": 0.05,
        "worker_health_check_timeout": 0.5,
        "worker_health_check_failures": 3,
        "worker_removal_threshold": 60.0,
        "max_body_bytes": 64 * 1024,
        "max_upload_bytes": 256 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


def seed_dataset(data_dir: Path, symbol: str = "EURUSD", timeframe: str = "1h") -> None:
    from ktrdr.data.csv_import import import_csv

    import_csv(data_dir, symbol, timeframe, SAMPLE_CSV.encode())


def seed_model(settings: Settings, strategy: str = "rsi_macd_trend", timeframe: str = "1h") -> Path:
    version_dir = settings.resolved_models_dir / strategy / f"{timeframe}_v1"
    version_dir.mkdir(parents=True)
    (version_dir / "metadata.json").write_text('{"symbol": "EURUSD", "created_at": "2024-01-02T00:00:00Z"}')
    (version_dir.parent / f"{timeframe}_latest").write_text(f"{timeframe}_v1\n")
    return version_dir


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    pool: FakeWorkerPool
    settings: Settings

    async def register(self, worker: Any, **overrides: Any) -> httpx.Response:
        return await self.client.post("/api/v1/workers/register", json=worker.registration(**overrides))

    async def rows(self) -> int:
        response = await self.client.get("/api/v1/operations", params={"limit": 1000})
        return int(response.json()["total_count"])


StartBackend = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def pool() -> FakeWorkerPool:
    return FakeWorkerPool()


@pytest.fixture
def start_backend(tmp_path: Path, pool: FakeWorkerPool) -> Callable[..., Any]:
    """``async with start_backend(**settings) as harness``: a started app, an ASGI client, the fakes."""
    import contextlib

    @contextlib.asynccontextmanager
    async def start(*, transport_errors: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
        settings = make_settings(tmp_path / "data", **overrides)
        app = create_app(settings, worker_transport=pool.transport())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=transport_errors)
            async with httpx.AsyncClient(transport=transport, base_url="http://backend") as client:
                yield Harness(app, client, pool, settings)

    return start


@pytest.fixture
async def backend(start_backend: StartBackend) -> AsyncIterator[Harness]:
    async with start_backend() as harness:
        yield harness


async def eventually(
    check: Callable[[], Awaitable[bool]], *, attempts: int = 200, pause: float = 0.02
) -> bool:
    """Poll ``check`` until it holds (bounded by a number of attempts, not a clock assertion)."""
    for _ in range(attempts):
        if await check():
            return True
        await asyncio.sleep(pause)
    return False
