"""The database schema as Alembic migrations, shipped inside the package, and the call that applies them.

``upgrade_database(db_url)`` brings any supported database (``sqlite+aiosqlite://`` or
``postgresql+asyncpg://``) to the newest schema; the CLI's ``ktrdr db upgrade`` calls it directly,
and no alembic.ini is involved. ``HEAD_REVISION`` is the newest revision shipped here: the backend
compares the database's stored revision with it at start-up and imports Alembic only when they
differ (an upgrade to run, or a database newer than this code, which Alembic then refuses).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ktrdr.errors import BadRequestError

MIGRATIONS_DIR = Path(__file__).resolve().parent

SUPPORTED_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")

# The head of versions/ (tests/control/test_migration_head.py checks it is Alembic's own head, so
# adding a migration without moving it fails there).
HEAD_REVISION = "0002"


def check_db_url(db_url: str) -> None:
    """Reject URLs whose driver the async store cannot use, naming the supported ones."""
    scheme = db_url.split(":", 1)[0]
    if scheme not in SUPPORTED_SCHEMES:
        raise BadRequestError(
            f"unsupported database URL scheme {scheme!r}; use one of {', '.join(SUPPORTED_SCHEMES)}",
            details={"scheme": scheme},
        )


def ensure_sqlite_parent(db_url: str) -> None:
    """Create the directory of a SQLite database file (the embedded default lives under the data dir)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade_database(db_url: str) -> None:
    """Apply every pending migration to ``db_url`` (Alembic ``upgrade head``).

    Synchronous, and it runs its own event loop: from async code call it through
    ``asyncio.to_thread``.
    """
    check_db_url(db_url)
    ensure_sqlite_parent(db_url)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not the ini option, so '%' in passwords needs no escaping.
    config.attributes["db_url"] = db_url
    command.upgrade(config, "head")


def current_revision(db_url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    check_db_url(db_url)

    async def _read() -> str | None:
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        finally:
            await engine.dispose()

    return asyncio.run(_read())
