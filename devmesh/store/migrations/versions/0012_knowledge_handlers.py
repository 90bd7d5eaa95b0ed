"""what the knowledge handlers need: a failure's signature on its context, each
tool's auto-retry policy, and the auto-retries made

``contexts.signature`` holds a failure analysis's ``error_pattern`` so earlier
failures of the same kind are found by an index, not by reading JSON.
``auto_retries`` has one row per failed build the worker retried (unique per tool
and build), which makes "exactly once" a constraint and counts the hourly cap.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tools") as batch:
        batch.add_column(sa.Column("auto_retry", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("contexts") as batch:
        batch.add_column(sa.Column("signature", sa.String(512), nullable=True))
    op.create_index("ix_contexts_tenant_signature", "contexts", ["tenant_id", "signature"])
    op.create_table(
        "auto_retries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("tool_id", sa.String(36), nullable=False),
        sa.Column("build_id", sa.String(255), nullable=False),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("retry_build_id", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_auto_retries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_auto_retries_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_retries")),
        sa.UniqueConstraint("tool_id", "build_id", name=op.f("uq_auto_retries_tool_id")),
    )
    op.create_index("ix_auto_retries_project", "auto_retries", ["tool_id", "project", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_auto_retries_project", table_name="auto_retries")
    op.drop_table("auto_retries")
    op.drop_index("ix_contexts_tenant_signature", table_name="contexts")
    with op.batch_alter_table("contexts") as batch:
        batch.drop_column("signature")
    with op.batch_alter_table("tools") as batch:
        batch.drop_column("auto_retry")
