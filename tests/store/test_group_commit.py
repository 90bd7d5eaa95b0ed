"""Group commit on both backends: shared transactions, outcomes of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.store.db import Database
from devmesh.store.group_commit import GroupCommit

pytestmark = pytest.mark.anyio


async def _table(database: Database) -> None:
    async with database.session() as session:
        await session.execute(text("CREATE TABLE gc_rows (n INTEGER PRIMARY KEY)"))


async def _rows(database: Database) -> list[int]:
    async with database.session() as session:
        return sorted(n for (n,) in await session.execute(text("SELECT n FROM gc_rows")))


def _insert(n: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def write(session: AsyncSession) -> int:
        await session.execute(text("INSERT INTO gc_rows (n) VALUES (:n)"), {"n": n})
        return n

    return write


async def test_concurrent_writes_each_get_their_result_once_committed(database: Database) -> None:
    await _table(database)
    commits = GroupCommit(database)

    results = await asyncio.gather(*(commits.run(_insert(n)) for n in range(50)))

    assert results == list(range(50))
    assert await _rows(database) == list(range(50))


async def test_a_failing_write_fails_alone_and_its_batch_neighbours_commit(
    database: Database,
) -> None:
    await _table(database)
    commits = GroupCommit(database)

    outcomes = await asyncio.gather(
        *(commits.run(_insert(n)) for n in [1, 2, 2, 3]),
        return_exceptions=True,
    )

    assert [o for o in outcomes if isinstance(o, int)] == [1, 2, 3]
    assert sum(isinstance(o, Exception) for o in outcomes) == 1
    assert await _rows(database) == [1, 2, 3]
