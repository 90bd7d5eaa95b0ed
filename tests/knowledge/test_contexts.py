"""The context store and its hybrid search, on SQLite and on PostgreSQL (pgvector)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devmesh.domain.errors import Conflict, InvalidInput, NotFound
from devmesh.knowledge.embedding import Model2VecEmbedder
from devmesh.knowledge.logtext import chunk_lines, clean_lines
from devmesh.knowledge.models import ContextQuery
from devmesh.knowledge.service import MAX_DATA_BYTES, ContextService
from devmesh.security.tenants import TenantService
from devmesh.store.db import Database
from tests.knowledge.conftest import add_tool

pytestmark = pytest.mark.anyio

LOG = "\n".join(
    [
        "Running tests",
        *[f"tests/test_module_{n}.py::test_case_{n} PASSED" for n in range(60)],
        "Connecting to database at db.internal:5432",
        "psycopg.OperationalError: connection refused (is the server running?)",
        "ERROR: job failed with exit code 1 [ERRCODE-7731]",
        *[f"cleanup step {n} ok" for n in range(30)],
    ]
)


@pytest.fixture
async def store(database: Database, embedder: Model2VecEmbedder) -> ContextService:
    return ContextService(db=database, embedder=embedder)


@pytest.fixture
async def tenants(database: Database) -> tuple[str, str]:
    service = TenantService(database)
    acme, _ = await service.create_tenant("acme")
    globex, _ = await service.create_tenant("globex")
    return acme.id, globex.id


async def _index_log(store: ContextService, tenant: str, tool: str, build: str) -> None:
    chunks = chunk_lines(clean_lines(LOG), max_lines=20)
    await store.index_log_chunks(
        tenant, tool, build, chunks, context_key=f"build-log-{build}", project="shop"
    )


async def test_a_stored_context_comes_back_by_key(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    stored = await store.store_context(
        acme, key="build-42", type="build", data={"result": "failed"}, subject="42"
    )
    got = await store.get_context(acme, "build-42")
    assert got == stored
    assert (got.type, got.subject, got.data, got.tool) == (
        "build",
        "42",
        {"result": "failed"},
        None,
    )


async def test_storing_a_key_again_replaces_it_and_keeps_its_creation_time(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    first = await store.store_context(acme, key="build-1", type="build", data={"n": 1})
    second = await store.store_context(acme, key="build-1", type="build", data={"n": 2})
    assert (await store.get_context(acme, "build-1")).data == {"n": 2}
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert await store.count(acme) == 1


async def test_a_deleted_context_is_gone(store: ContextService, tenants: tuple[str, str]) -> None:
    acme, _ = tenants
    await store.store_context(acme, key="note-1", type="note", data={"text": "kettle descaled"})
    await store.delete_context(acme, "note-1")
    with pytest.raises(NotFound):
        await store.get_context(acme, "note-1")
    assert (await store.search_contexts(acme, ContextQuery(query="kettle"))).results == []


async def test_a_key_under_two_tools_asks_which_tool(
    database: Database, store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    await add_tool(database, acme, "gitlab-prod")
    await add_tool(database, acme, "gitlab-dev")
    for tool in ("gitlab-prod", "gitlab-dev"):
        await store.store_context(acme, key="build-7", type="gitlab_build", data={}, tool=tool)
    with pytest.raises(Conflict) as caught:
        await store.get_context(acme, "build-7")
    assert caught.value.details["tools"] == ["gitlab-dev", "gitlab-prod"]
    assert (await store.get_context(acme, "build-7", tool="gitlab-dev")).tool == "gitlab-dev"


async def test_another_tenants_contexts_are_not_found_counted_or_searched(
    database: Database, store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, globex = tenants
    await add_tool(database, acme, "ci")
    await store.store_context(acme, key="build-1", type="build", data={"error": "ERRCODE-7731"})
    await _index_log(store, acme, "ci", "1")
    with pytest.raises(NotFound):
        await store.get_context(globex, "build-1")
    assert await store.count(globex) == 0
    found = await store.search_contexts(globex, ContextQuery(query="ERRCODE-7731 connection"))
    assert found.results == []
    with pytest.raises(NotFound):
        await store.delete_context(globex, "build-1")
    assert await store.count(acme) == 2


async def test_an_exact_identifier_finds_the_log_lines_holding_it(
    database: Database, store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    await add_tool(database, acme, "ci")
    await _index_log(store, acme, "ci", "99")
    found = await store.search_contexts(acme, ContextQuery(query="ERRCODE-7731", limit=1))
    [hit] = found.results
    assert (hit.key, hit.type, hit.build_id, hit.tool) == ("build-log-99", "build_log", "99", "ci")
    assert hit.lines is not None and hit.lines.first <= 64 <= hit.lines.last
    assert hit.lines.cursor == str(hit.lines.first - 1)
    assert "ERRCODE-7731" in hit.snippet


async def test_a_paraphrase_without_shared_words_finds_a_context_by_meaning(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    await store.store_context(
        acme,
        key="resolution-1",
        type="resolution",
        data={"summary": "database refused connections", "resolution": "restart postgres"},
    )
    await store.store_context(
        acme, key="resolution-2", type="resolution", data={"summary": "shipped the release notes"}
    )
    found = await store.search_contexts(acme, ContextQuery(query="sql server unreachable", limit=1))
    assert [hit.key for hit in found.results] == ["resolution-1"]
    assert found.results[0].resolution == "restart postgres"


async def test_filters_keep_only_matching_contexts(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    for n, (kind, status) in enumerate([("build", "failed"), ("build", "success"), ("note", None)]):
        await store.store_context(
            acme, key=f"k-{n}", type=kind, data={"text": "timeout"}, status=status
        )
    failed = await store.search_contexts(
        acme, ContextQuery(query="timeout", type="build", status="failed", limit=10)
    )
    later = await store.search_contexts(
        acme, ContextQuery(query="timeout", since=datetime.now(UTC) + timedelta(hours=1))
    )
    assert [hit.key for hit in failed.results] == ["k-0"]
    assert later.results == []


async def test_similar_can_leave_out_the_build_asked_about(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    for build in ("1", "2"):
        await store.store_context(
            acme, key=f"build-{build}", type="build", data={"error": "OOM killed"}, subject=build
        )
    hits = await store.similar(acme, "OOM killed", exclude_subject="1", limit=5)
    assert [hit.subject for hit in hits] == ["2"]


async def test_reindexing_a_log_replaces_its_chunks(
    database: Database, store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    await add_tool(database, acme, "ci")
    await _index_log(store, acme, "ci", "5")
    again = await store.index_log_chunks(
        acme, "ci", "5", chunk_lines(["only one line"]), context_key="build-log-5"
    )
    assert again.data == {"chunks": 1, "lines": 1}
    found = await store.search_contexts(acme, ContextQuery(query="ERRCODE-7731"))
    assert all(hit.snippet == "only one line" for hit in found.results)


async def test_data_over_the_size_cap_is_refused_naming_data(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    with pytest.raises(InvalidInput) as caught:
        await store.store_context(acme, key="big", type="note", data={"blob": "x" * MAX_DATA_BYTES})
    assert caught.value.field == "data"


async def test_an_unknown_tool_is_refused_naming_tool(
    store: ContextService, tenants: tuple[str, str]
) -> None:
    acme, _ = tenants
    with pytest.raises(InvalidInput) as caught:
        await store.store_context(acme, key="k", type="note", data={}, tool="nope")
    assert caught.value.field == "tool"
