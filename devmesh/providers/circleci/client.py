"""A typed client for CircleCI's API v2 (and the one v1.1 endpoint logs need), on the kit.

Every request goes through the kit's ``UpstreamHttp``, so failures arrive as
``AdapterError``s already: 401 is a missing or wrong token; 404 a project, pipeline,
workflow or job CircleCI does not have, or that the token's user may not see (CircleCI
answers 404 for both); 429 carries ``Retry-After``; 400 is a request CircleCI refused
(an undeclared pipeline parameter, say), with its ``message``.

Credentials (``CREDENTIALS``): a personal API token, sent as ``Circle-Token`` (API v2
and v1.1 both take it). A caller's own token passes through the same way.

Paths: API v2 under ``<base_url>/api/v2`` with the project slug ``%2F``-encoded; the
v1.1 "Single Job" endpoint under ``<base_url>/api/v1.1``. A step's ``output_url`` and
an artifact's ``url`` point elsewhere (signed storage URLs): they are read as given,
the token sent only to base_url's origin, and like every request they pass the
service's egress policy, so an upstream cannot point the service at its own network.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from devmesh.adapters.credentials import CredentialScheme, header_token
from devmesh.adapters.http import UnexpectedAnswer, UpstreamHttp, Window
from devmesh.adapters.pagination import Page, collect
from devmesh.adapters.registry import Connection
from devmesh.providers.circleci.ids import encoded, v1_path
from devmesh.providers.circleci.models import (
    WireArtifact,
    WireJob,
    WireJobDetail,
    WirePipeline,
    WirePipelineCreated,
    WireWorkflow,
)

__all__ = ["CREDENTIALS", "CircleCIClient"]

M = TypeVar("M", bound=BaseModel)

CREDENTIALS = CredentialScheme(
    types=(
        header_token(
            "circle_token",
            "Circle-Token",
            description="A CircleCI personal API token (User Settings → Personal API "
            "Tokens), sent as the Circle-Token header.",
        ),
    ),
    passthrough="circle_token",
)
_PROJECT_HINT = (
    "CircleCI answers 'not found' for a project the token's user may not see as well as "
    "for a missing one: check the slug ('gh/org/repo') and that the user follows it"
)
# Enough of a workflow's jobs or a pipeline's workflows for any real config.
_MAX_ITEMS = 500


def _auth_advice(credentials_sent: bool) -> str:
    if not credentials_sent:
        return "CircleCI needs a token: store a personal API token for the tool"
    return "check the personal API token (it stops working when its user revokes it)"


def _parsed(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a CircleCI {model.__name__}") from exc


def _page(model: type[M], body: Any) -> Page[M, str]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise UnexpectedAnswer("not a CircleCI page of items")
    token = body.get("next_page_token")
    return Page(
        [_parsed(model, item) for item in body["items"]],
        token if isinstance(token, str) and token else None,
    )


class CircleCIClient:
    def __init__(self, connection: Connection, *, timeout: float) -> None:
        self.upstream: UpstreamHttp = connection.upstream(
            name="circleci",
            auth=CREDENTIALS.auth(connection.credentials),
            timeout=timeout,
            base_url=connection.base_url.rstrip("/"),
            auth_advice=_auth_advice,
            base_url_hint="check that base_url is CircleCI's root (https://circleci.com)",
        )

    async def _get(self, path: str, what: str, model: type[M], **kw: Any) -> M:
        async with self.upstream.mapped(what, hint=kw.get("hint")):
            return _parsed(model, await self.upstream.get_json(path, what=what, **kw))

    async def _pages(
        self, path: str, what: str, model: type[M], *, limit: int, hint: str | None = None
    ) -> list[M]:
        async def fetch(token: str | None) -> Page[M, str]:
            async with self.upstream.mapped(what, hint=hint):
                body = await self.upstream.get_json(
                    path, what=what, params={"page-token": token} if token else None, hint=hint
                )
                return _page(model, body)

        return await collect(fetch, limit=limit)

    # --- reads ----------------------------------------------------------------------------

    async def me(self) -> None:
        await self.upstream.get_json("/api/v2/me", what="read the token's user")

    async def pipelines(self, slug: str, *, limit: int) -> list[WirePipeline]:
        """The project's pipelines, newest first (CircleCI's order)."""
        return await self._pages(
            f"/api/v2/project/{encoded(slug)}/pipeline",
            f"list pipelines of {slug}",
            WirePipeline,
            limit=limit,
            hint=_PROJECT_HINT,
        )

    async def pipeline(self, pipeline_id: str) -> WirePipeline:
        return await self._get(
            f"/api/v2/pipeline/{pipeline_id}", f"read pipeline {pipeline_id}", WirePipeline
        )

    async def workflows(self, pipeline_id: str) -> list[WireWorkflow]:
        return await self._pages(
            f"/api/v2/pipeline/{pipeline_id}/workflow",
            f"list workflows of pipeline {pipeline_id}",
            WireWorkflow,
            limit=_MAX_ITEMS,
        )

    async def workflow(self, workflow_id: str) -> WireWorkflow:
        return await self._get(
            f"/api/v2/workflow/{workflow_id}", f"read workflow {workflow_id}", WireWorkflow
        )

    async def jobs(self, workflow_id: str) -> list[WireJob]:
        return await self._pages(
            f"/api/v2/workflow/{workflow_id}/job",
            f"list jobs of workflow {workflow_id}",
            WireJob,
            limit=_MAX_ITEMS,
        )

    async def artifacts(self, slug: str, job_number: int) -> list[WireArtifact]:
        return await self._pages(
            f"/api/v2/project/{encoded(slug)}/{job_number}/artifacts",
            f"list artifacts of job {job_number}",
            WireArtifact,
            limit=_MAX_ITEMS,
        )

    async def job_detail(self, slug: str, job_number: int) -> WireJobDetail:
        return await self._get(
            f"/api/v1.1/project/{v1_path(slug)}/{job_number}",
            f"read job {job_number} of {slug}",
            WireJobDetail,
        )

    async def step_output(self, url: str, *, limit: int) -> tuple[list[str], bool]:
        """A step's output messages (``[{message, time, type}]``) and whether the read
        stopped at ``limit`` bytes (then the output's start is kept)."""
        window = await self.upstream.read_window(
            httpx.URL(url), offset=0, limit=limit, what="read a step's output"
        )
        if window.more:
            # A clipped JSON array cannot be parsed; keep its text as it is.
            return [window.data.decode("utf-8", errors="replace")], True
        async with self.upstream.mapped("read a step's output"):
            try:
                body = httpx.Response(200, content=window.data).json()
            except ValueError as exc:
                raise UnexpectedAnswer("step output is not JSON") from exc
            if not isinstance(body, list):
                raise UnexpectedAnswer("step output is not a list of messages")
        return [str(item.get("message", "")) for item in body if isinstance(item, dict)], False

    async def artifact_window(self, url: str, *, offset: int, limit: int) -> Window:
        return await self.upstream.read_window(
            httpx.URL(url), offset=offset, limit=limit, what="read an artifact"
        )

    # --- writes ---------------------------------------------------------------------------

    async def trigger(
        self, slug: str, *, branch: str | None, parameters: dict[str, Any]
    ) -> WirePipelineCreated:
        payload: dict[str, Any] = {}
        if branch:
            payload["branch"] = branch
        if parameters:
            payload["parameters"] = parameters
        what = f"trigger a pipeline of {slug}"
        async with self.upstream.mapped(what, hint=_PROJECT_HINT):
            body, _ = await self.upstream.send_json(
                "POST",
                f"/api/v2/project/{encoded(slug)}/pipeline",
                what=what,
                payload=payload,
                hint=_PROJECT_HINT,
            )
            return _parsed(WirePipelineCreated, body)

    async def cancel(self, workflow_id: str) -> None:
        await self.upstream.send_json(
            "POST", f"/api/v2/workflow/{workflow_id}/cancel", what=f"cancel workflow {workflow_id}"
        )

    async def rerun(self, workflow_id: str, *, from_failed: bool) -> str:
        """The new workflow's id."""
        what = f"rerun workflow {workflow_id}"
        async with self.upstream.mapped(what):
            body, _ = await self.upstream.send_json(
                "POST",
                f"/api/v2/workflow/{workflow_id}/rerun",
                what=what,
                payload={"from_failed": True} if from_failed else {},
            )
            if not isinstance(body, dict) or not isinstance(body.get("workflow_id"), str):
                raise UnexpectedAnswer("no workflow_id in the rerun's answer")
            return str(body["workflow_id"])
