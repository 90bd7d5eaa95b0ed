"""API keys may be issued read-only; tool instances may name their default toolsets

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing key keeps doing what it always could.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("read_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # NULL: the instance lists what the service's `toolsets` setting says.
    with op.batch_alter_table("tools") as batch:
        batch.add_column(sa.Column("toolsets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tools") as batch:
        batch.drop_column("toolsets")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("read_only")
