"""Migration 0010: events recorded twice before the one-per-subject guard existed are
reduced to the first of each, so the guard's unique index can be built."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from devmesh.store.db import Database, _alembic_config
from devmesh.store.rows import EventRow, TenantRow

pytestmark = pytest.mark.anyio

TENANT = "00000000-0000-4000-8000-00000000000a"
TOOL = "00000000-0000-4000-8000-00000000000b"
WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _to(revision: str) -> object:
    def run(conn: Connection) -> None:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    return run


@pytest.mark.empty_database
async def test_upgrading_keeps_the_first_of_each_duplicated_event(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_to("0009"))
            await conn.execute(
                insert(TenantRow.__table__).values(id=TENANT, name="acme", created_at=WHEN)
            )
            for n, (subject, kind) in enumerate(
                [
                    ("br-1", "build.completed"),
                    ("br-1", "build.completed"),
                    ("br-1", "build.started"),
                    (None, "tool.called"),
                    (None, "tool.called"),
                ]
            ):
                await conn.execute(
                    insert(EventRow.__table__).values(
                        id=f"e{n}",
                        tenant_id=TENANT,
                        tool_id=TOOL,
                        tool_name="ci",
                        provider="buildbot",
                        type=kind,
                        source="webhook",
                        subject=subject,
                        occurred_at=WHEN,
                        payload={},
                        created_at=WHEN,
                    )
                )
            await conn.commit()
            await conn.run_sync(_to("0010"))
            await conn.commit()
            kept = (await conn.execute(text("SELECT id FROM events ORDER BY seq"))).scalars()
            assert list(kept) == ["e0", "e2", "e3", "e4"]
    finally:
        await db.close()
