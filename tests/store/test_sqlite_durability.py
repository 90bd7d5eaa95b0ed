"""SQLite's durability setting reaches every connection the engine opens."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import text

from devmesh.config import Settings
from devmesh.store.db import Database

pytestmark = pytest.mark.anyio

# PRAGMA synchronous answers a number: 1 is NORMAL, 2 is FULL.
_LEVELS = {"normal": 1, "full": 2}


@pytest.mark.parametrize("setting", ["normal", "full"])
async def test_each_sqlite_connection_runs_at_the_configured_synchronous_level(
    tmp_path: Path, setting: Literal["full", "normal"]
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", sqlite_synchronous=setting)
    try:
        async with db.session() as session:
            level = await session.scalar(text("PRAGMA synchronous"))
            mode = await session.scalar(text("PRAGMA journal_mode"))
    finally:
        await db.close()
    assert (level, mode) == (_LEVELS[setting], "wal")


def test_the_embedded_default_commits_at_synchronous_normal() -> None:
    assert Settings().database.sqlite_synchronous == "normal"


def test_an_unknown_synchronous_level_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Settings.model_validate({"database": {"sqlite_synchronous": "off"}})
