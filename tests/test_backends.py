"""The backends the suite runs on are the real servers, with what we rely on."""

import asyncpg
import pytest
import redis.asyncio as redis

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_postgres_has_pgvector_with_cosine_distance(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        distance = await conn.fetchval("SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector")
        version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname='vector'")
    finally:
        await conn.close()
    assert distance == 1.0
    assert version >= "0.8"


async def test_redis_supports_stream_consumer_groups(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        await client.delete("devmesh-test-events")
        event_id = await client.xadd("devmesh-test-events", {"type": "build.completed"})
        await client.xgroup_create("devmesh-test-events", "workers", id="0", mkstream=True)
        [(_, [(read_id, fields)])] = await client.xreadgroup(
            "workers", "w1", {"devmesh-test-events": ">"}, count=1
        )
        assert read_id == event_id
        assert fields == {b"type": b"build.completed"}
        assert await client.xack("devmesh-test-events", "workers", read_id) == 1
    finally:
        await client.aclose()
