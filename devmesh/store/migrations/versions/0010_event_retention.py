"""events: one of a type per subject and tool (one build identity across sources)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Duplicates recorded before the guard existed (a webhook's and the watcher's
    # build.completed): the first of each stays; their queued deliveries go with them.
    op.execute(
        sa.text(
            "DELETE FROM events WHERE subject IS NOT NULL AND seq NOT IN ("
            " SELECT MIN(seq) FROM events WHERE subject IS NOT NULL"
            " GROUP BY tenant_id, tool_id, subject, type)"
        )
    )
    op.create_index(
        "uq_events_once", "events", ["tenant_id", "tool_id", "subject", "type"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_events_once", table_name="events")
