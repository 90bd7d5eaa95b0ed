"""tool instances choose whether their TLS certificate is checked

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing tool keeps checking certificates, as it always has.
    with op.batch_alter_table("tools") as batch:
        batch.add_column(
            sa.Column("verify_tls", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("tools") as batch:
        batch.drop_column("verify_tls")
