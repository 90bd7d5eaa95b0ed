"""The knowledge tests share one embedder: the real shipped model, loaded once."""

from __future__ import annotations

import uuid

import pytest

from devmesh.knowledge.embedding import Model2VecEmbedder
from devmesh.store.db import Database
from devmesh.store.rows import ToolRow


@pytest.fixture(scope="session")
def embedder() -> Model2VecEmbedder:
    return Model2VecEmbedder()


async def add_tool(db: Database, tenant_id: str, name: str) -> str:
    """A tool row for ``tenant_id`` (the knowledge layer needs only its name and id)."""
    tool_id = str(uuid.uuid4())
    async with db.session() as session:
        session.add(
            ToolRow(
                id=tool_id,
                tenant_id=tenant_id,
                name=name,
                provider="gitlab",
                base_url="https://gitlab.example.com",
            )
        )
    return tool_id
