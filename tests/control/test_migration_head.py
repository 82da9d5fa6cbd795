"""The backend runs Alembic only when the database is not at the head the package ships
(ktrdr.control.migrations.HEAD_REVISION), and that constant is Alembic's own head; starting imports
no HTTP client (the worker client makes one on its first call)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from ktrdr.control.migrations import HEAD_REVISION, MIGRATIONS_DIR, upgrade_database
from ktrdr.control.store import OperationStore
from tests.control.test_operation_store import db_url  # noqa: F401  (the SQLite/PostgreSQL fixture)

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_head_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_the_store_reads_the_revision_alembic_wrote(db_url: str) -> None:  # noqa: F811
    async def revision() -> str | None:
        store = OperationStore.from_url(db_url)
        try:
            return await store.schema_revision()
        finally:
            await store.close()

    if db_url.startswith("sqlite"):
        Path(db_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    assert asyncio.run(revision()) is None
    upgrade_database(db_url)
    assert asyncio.run(revision()) == HEAD_REVISION


# Runs the backend's lifespan in a fresh interpreter, pings its store, reports what it imported. No
# HTTP client drives it: starting must import neither Alembic (at head) nor httpx (no worker called).
START = """
import asyncio, json, sys
from ktrdr.api.main import create_app
from ktrdr.settings import Settings
app = create_app(Settings())
async def start() -> bool:
    async with app.router.lifespan_context(app):
        return await app.state.backend.store.ping()
ok = asyncio.run(start())
print(json.dumps({"status": 200 if ok else 503, **{m: m in sys.modules for m in ("alembic", "httpx")}}))
"""


def start_backend(data_dir: Path, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"KTRDR_DATA_DIR": str(data_dir), "KTRDR_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
    if database_url is not None:
        env["KTRDR_DB_URL"] = database_url
    return subprocess.run([sys.executable, "-c", START], cwd=REPO, env=env, capture_output=True, text=True)


def reported(run: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, object] = json.loads(run.stdout.splitlines()[-1])
    return report


def test_alembic_runs_only_when_the_database_is_not_at_the_head(tmp_path: Path) -> None:
    assert reported(start_backend(tmp_path)) == {"status": 200, "alembic": True, "httpx": False}
    (database,) = tmp_path.rglob("*.db")
    assert reported(start_backend(tmp_path)) == {"status": 200, "alembic": False, "httpx": False}

    # A revision this code does not know (a newer database): Alembic runs and refuses it.
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    newer = start_backend(tmp_path)
    assert newer.returncode != 0
    assert "ffffffffffff" in newer.stdout + newer.stderr


def test_a_database_newer_than_the_code_is_refused_on_either_database(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """SQLite and PostgreSQL alike: a revision this code does not know stops the start, naming the
    revision, and the database keeps it (nothing is downgraded or rewritten)."""
    if db_url.startswith("sqlite"):
        Path(db_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    upgrade_database(db_url)

    async def revision(new: str | None = None) -> str | None:
        store = OperationStore.from_url(db_url)
        try:
            if new is not None:
                async with store.engine.begin() as conn:
                    await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": new})
            return await store.schema_revision()
        finally:
            await store.close()

    assert asyncio.run(revision("ffffffffffff")) == "ffffffffffff"
    newer = start_backend(tmp_path, db_url)
    assert newer.returncode != 0
    assert "ffffffffffff" in newer.stdout + newer.stderr
    assert asyncio.run(revision()) == "ffffffffffff"
