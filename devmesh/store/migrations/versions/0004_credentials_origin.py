"""credentials bound to the origin they were stored for

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing sealed credentials keep a NULL origin: the vault reads them with the
    # associated data they were sealed under; the next store binds them to an origin.
    with op.batch_alter_table("tools") as batch:
        batch.add_column(sa.Column("credentials_origin", sa.String(2048), nullable=True))


def downgrade() -> None:
    # Credentials sealed with an origin cannot be read without it: forget them.
    op.execute(
        "UPDATE tools SET credentials_sealed = NULL, credentials_key_id = NULL "
        "WHERE credentials_origin IS NOT NULL"
    )
    with op.batch_alter_table("tools") as batch:
        batch.drop_column("credentials_origin")
