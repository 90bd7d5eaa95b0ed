"""Contexts: what the knowledge layer remembers, stored, read and searched; a thin face
over ``ContextService``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from devmesh.api.deps import Contexts, CurrentTenant
from devmesh.api.openapi import problems
from devmesh.knowledge.models import (
    KEY_PATTERN,
    Context,
    ContextQuery,
    ContextWrite,
    SearchResults,
)

router = APIRouter(prefix="/api/v1/contexts", tags=["contexts"])

_Key = Annotated[str, Path(pattern=KEY_PATTERN, description="e.g. build-42")]
_Tool = Annotated[
    str | None,
    Query(
        max_length=64,
        description="The tool the context belongs to; needed only when the key exists "
        "under several tools (409 lists them).",
    ),
]


@router.post(
    "/search",
    response_model=SearchResults,
    summary="Search contexts and indexed logs by words and meaning",
)
async def search_contexts(
    body: ContextQuery, tenant: CurrentTenant, contexts: Contexts
) -> SearchResults:
    return await contexts.search_contexts(tenant.id, body)


@router.put(
    "/{key}",
    response_model=Context,
    summary="Store a context (storing a key again replaces it)",
)
async def store_context(
    key: _Key, body: ContextWrite, tenant: CurrentTenant, contexts: Contexts
) -> Context:
    return await contexts.store_context(
        tenant.id,
        key=key,
        type=body.type,
        data=body.data,
        tool=body.tool,
        subject=body.subject,
        project=body.project,
        status=body.status,
    )


@router.get("/{key}", response_model=Context, summary="Read a context", responses=problems(409))
async def get_context(
    key: _Key, tenant: CurrentTenant, contexts: Contexts, tool: _Tool = None
) -> Context:
    return await contexts.get_context(tenant.id, key, tool=tool)


@router.delete("/{key}", status_code=204, summary="Delete a context", responses=problems(409))
async def delete_context(
    key: _Key, tenant: CurrentTenant, contexts: Contexts, tool: _Tool = None
) -> Response:
    await contexts.delete_context(tenant.id, key, tool=tool)
    return Response(status_code=204)
