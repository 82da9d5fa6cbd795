"""Workers remember which token they registered with, as a fingerprint (never the token).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows from before have none: a backend with a token configured calls those workers only once
    # they register again (they do so when its polls stop reaching them).
    op.add_column("workers", sa.Column("token_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("token_fingerprint")
