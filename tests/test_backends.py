"""The backends the suite runs on are the real servers, with what we rely on."""

import uuid

import asyncpg
import pytest
import redis.asyncio as redis

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_postgres_has_pgvector_and_orthogonal_vectors_are_at_cosine_distance_one(
    postgres_url: str,
) -> None:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname='vector'")
        distance = await conn.fetchval("SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector")
    finally:
        await conn.close()
    assert version is not None
    assert tuple(int(part) for part in version.split(".")[:2]) >= (0, 8)
    assert distance == 1.0


async def test_redis_stream_consumer_group_reads_and_acknowledges_an_event(
    redis_url: str,
) -> None:
    stream, group = f"devmesh-test-{uuid.uuid4().hex[:8]}", "workers"
    client = redis.Redis.from_url(redis_url)
    try:
        # MKSTREAM: the group is created before the first event, as a consumer would.
        assert await client.xgroup_create(stream, group, id="$", mkstream=True)
        event_id = await client.xadd(stream, {"type": "build.completed"})
        [(_, [(read_id, fields)])] = await client.xreadgroup(
            group, "worker-1", {stream: ">"}, count=1, block=1000
        )
        assert read_id == event_id
        assert fields == {b"type": b"build.completed"}
        assert (await client.xpending(stream, group))["pending"] == 1
        assert await client.xack(stream, group, read_id) == 1
        assert (await client.xpending(stream, group))["pending"] == 0
    finally:
        await client.delete(stream)
        await client.aclose()
