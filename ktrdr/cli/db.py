"""``ktrdr db upgrade``: apply the operations store's migrations (also done at backend start-up)."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Manage the operations database (SQLite by default, PostgreSQL via KTRDR_DB_URL)."""


@db.command()
@click.option("--db-url", envvar="KTRDR_DB_URL", help="Database URL (default: SQLite under KTRDR_DATA_DIR).")
def upgrade(db_url: str | None) -> None:
    """Migrate the database schema to the newest revision."""
    from ktrdr.control.migrations import upgrade_database
    from ktrdr.errors import KtrdrError
    from ktrdr.settings import get_settings

    url = db_url or get_settings().resolved_db_url
    try:
        upgrade_database(url)
    except KtrdrError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"database is at the newest schema: {_redact(url)}")


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host/...``."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, location = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{location}"
    return url
