"""A typed client for GitLab's REST API v4 (``<base_url>/api/v4``), on the provider kit.

Every request goes through the kit's ``UpstreamHttp`` (the shared, egress-checked
client the composition root built), so failures arrive as ``AdapterError``s already:
401 is a refused token, 403 a missing scope or role, 429 GitLab's rate limit with its
``Retry-After``/``RateLimit-Reset`` wait. GitLab answers 404 both for a project that
does not exist and for one the token may not see; the hint on project calls says so.

Credentials (``CREDENTIALS``): access tokens (personal, project, group) as
``PRIVATE-TOKEN``; OAuth tokens as ``Authorization: Bearer`` (GitLab takes access
tokens that way too, so a caller's own token passes through as ``bearer``); CI job
tokens as ``JOB-TOKEN``.

Lists are read page by page with the kit's ``collect``: offset pages by
``X-Next-Page``, keyset pages (``pagination=keyset``) by the ``Link`` header's
``rel="next"``, whichever GitLab sends; both bounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from devmesh.adapters.credentials import CredentialScheme, bearer, header_token
from devmesh.adapters.egress import origin_of
from devmesh.adapters.http import UnexpectedAnswer, UpstreamHttp, Window
from devmesh.adapters.pagination import Page, collect, next_link, next_page_number
from devmesh.adapters.registry import Connection
from devmesh.adapters.tailing import Tail, read_tail
from devmesh.providers.gitlab.models import (
    WireJob,
    WirePipeline,
    WireProject,
    WireSchedule,
)

__all__ = ["API_PATH", "CREDENTIALS", "GitLabClient", "project_path"]

M = TypeVar("M", bound=BaseModel)

API_PATH = "/api/v4"
_PER_PAGE = 100
_PROJECT_HINT = (
    "GitLab answers 'not found' for a project the token may not see as well as for a "
    "missing one: check the path (group/app) or id, and that the token's user is a member"
)

CREDENTIALS = CredentialScheme(
    types=(
        header_token(
            "private_token",
            "PRIVATE-TOKEN",
            description="A GitLab personal, project or group access token (glpat-…) with "
            "the api scope, sent as PRIVATE-TOKEN.",
        ),
        header_token(
            "personal_access_token",
            "PRIVATE-TOKEN",
            description="The same as private_token, under the name other providers use.",
        ),
        bearer(
            description="An OAuth access token (or an access token), sent as "
            "'Authorization: Bearer'; callers' own tokens are sent this way."
        ),
        header_token(
            "job_token",
            "JOB-TOKEN",
            description="A CI job token (CI_JOB_TOKEN), sent as JOB-TOKEN; GitLab lets it "
            "reach only a few endpoints.",
        ),
    ),
    passthrough="bearer",
)


def project_path(project: str) -> str:
    """``/projects/<id>``: a numeric id as is, a path URL-encoded (``group%2Fapp``)."""
    return f"/projects/{quote(project.strip('/'), safe='')}"


def _auth_advice(credentials_sent: bool) -> str:
    if not credentials_sent:
        return "GitLab needs a token for this: store an access token for the tool"
    return (
        "check that the token is right and not expired or revoked, that it has the api "
        "scope, and that its user has at least the Developer role in the project"
    )


def _parsed(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a GitLab {model.__name__}") from exc


def _parsed_list(model: type[M], body: Any) -> list[M]:
    try:
        return TypeAdapter(list[model]).validate_python(body)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a list of GitLab {model.__name__}") from exc


class GitLabClient:
    """GitLab's API for one tool instance: base_url is GitLab's root (https://gitlab.com)."""

    def __init__(self, connection: Connection, *, timeout: float) -> None:
        root = connection.base_url.rstrip("/")
        # People paste the API's address as often as GitLab's; both mean GitLab.
        root = root.removesuffix(API_PATH).rstrip("/")
        self.web_url = root
        self.upstream: UpstreamHttp = connection.upstream(
            name="gitlab",
            auth=CREDENTIALS.auth(connection.credentials),
            timeout=timeout,
            base_url=f"{root}{API_PATH}",
            auth_advice=_auth_advice,
            base_url_hint="check that base_url is GitLab's root URL, e.g. https://gitlab.com",
        )
        self._origin = origin_of(root)

    # --- reads -----------------------------------------------------------------------

    async def version(self) -> None:
        await self.upstream.get_json("/version", what="read GitLab's version")

    async def project(self, project: str) -> WireProject:
        body = await self.upstream.get_json(
            project_path(project), what=f"read project {project}", hint=_PROJECT_HINT
        )
        return _parsed(WireProject, body)

    async def member_projects(self, *, limit: int) -> list[WireProject]:
        """Projects the token's user is at least a Developer of, newest first (keyset)."""
        params = {
            "membership": "true",
            "min_access_level": "30",
            "simple": "true",
            "archived": "false",
            "pagination": "keyset",
            "order_by": "id",
            "sort": "desc",
        }
        return await self._list("/projects", WireProject, what="list projects", params=params,
                                limit=limit)  # fmt: skip

    async def pipeline(self, project: str, pipeline_id: int) -> WirePipeline:
        body = await self.upstream.get_json(
            f"{project_path(project)}/pipelines/{pipeline_id}",
            what=f"read pipeline {pipeline_id} of {project}",
            hint=_PROJECT_HINT,
        )
        return _parsed(WirePipeline, body)

    async def pipelines(
        self, project: str, *, status: str | None, limit: int
    ) -> list[WirePipeline]:
        params: dict[str, str] = {"order_by": "id", "sort": "desc"}
        if status is not None:
            params["status"] = status
        return await self._list(
            f"{project_path(project)}/pipelines",
            WirePipeline,
            what=f"list pipelines of {project}",
            params=params,
            limit=limit,
            hint=_PROJECT_HINT,
        )

    async def pipeline_jobs(self, project: str, pipeline_id: int, *, limit: int) -> list[WireJob]:
        """The pipeline's current jobs (retried attempts left out), newest first."""
        return await self._list(
            f"{project_path(project)}/pipelines/{pipeline_id}/jobs",
            WireJob,
            what=f"list the jobs of pipeline {pipeline_id} of {project}",
            limit=limit,
        )

    async def job(self, project: str, job_id: int) -> WireJob:
        body = await self.upstream.get_json(
            f"{project_path(project)}/jobs/{job_id}",
            what=f"read job {job_id} of {project}",
            hint=_PROJECT_HINT,
        )
        return _parsed(WireJob, body)

    async def failed_jobs(self, project: str, *, limit: int) -> list[WireJob]:
        """The project's newest failed jobs, each naming its pipeline."""
        return await self._list(
            f"{project_path(project)}/jobs",
            WireJob,
            what=f"list failed jobs of {project}",
            params={"scope[]": "failed"},
            limit=limit,
            hint=_PROJECT_HINT,
        )

    async def pipeline_variable_pairs(self, project: str, pipeline_id: int) -> list[dict[str, str]]:
        """The variables a pipeline was created with, as ``create_pipeline`` takes them."""
        body = await self.upstream.get_json(
            f"{project_path(project)}/pipelines/{pipeline_id}/variables",
            what=f"read the variables of pipeline {pipeline_id} of {project}",
        )
        if not isinstance(body, list):
            async with self.upstream.mapped("read pipeline variables"):
                raise UnexpectedAnswer("variables are not a list")
        return [
            {
                "key": str(item["key"]),
                "value": str(item.get("value", "")),
                "variable_type": str(item.get("variable_type") or "env_var"),
            }
            for item in body
            if isinstance(item, dict) and "key" in item
        ]

    async def trace(self, project: str, job_id: int, *, max_bytes: int) -> Tail:
        """The end of a job's log: at most ``max_bytes``, read as a stream."""
        async with self.upstream.stream(
            "GET",
            f"{project_path(project)}/jobs/{job_id}/trace",
            what=f"read the log of job {job_id} of {project}",
        ) as response:
            return await read_tail(response, limit=max_bytes)

    async def artifact_window(
        self, project: str, job_id: int, path: str | None, *, offset: int, limit: int
    ) -> Window:
        """Bytes of a job's artifacts archive, or of one file in it (``path``)."""
        where = f"{project_path(project)}/jobs/{job_id}/artifacts"
        if path is not None:
            where += "/" + quote(path, safe="/")
        what = f"read {'artifact ' + path if path else 'the artifacts'} of job {job_id}"
        return await self.upstream.read_window(where, offset=offset, limit=limit, what=what)

    async def trace_window(self, project: str, job_id: int, *, offset: int, limit: int) -> Window:
        return await self.upstream.read_window(
            f"{project_path(project)}/jobs/{job_id}/trace",
            offset=offset,
            limit=limit,
            what=f"read the log of job {job_id} of {project}",
        )

    async def schedules(self, project: str, *, limit: int) -> list[WireSchedule]:
        return await self._list(
            f"{project_path(project)}/pipeline_schedules",
            WireSchedule,
            what=f"list the pipeline schedules of {project}",
            params={"scope": "active"},
            limit=limit,
            hint=_PROJECT_HINT,
        )

    async def schedule(self, project: str, schedule_id: int) -> WireSchedule:
        body = await self.upstream.get_json(
            f"{project_path(project)}/pipeline_schedules/{schedule_id}",
            what=f"read pipeline schedule {schedule_id} of {project}",
            hint=_PROJECT_HINT,
        )
        return _parsed(WireSchedule, body)

    # --- writes ----------------------------------------------------------------------

    async def create_pipeline(
        self, project: str, *, ref: str, variables: Sequence[Mapping[str, str]]
    ) -> WirePipeline:
        body, _ = await self.upstream.send_json(
            "POST",
            f"{project_path(project)}/pipeline",
            what=f"create a pipeline for {ref!r} in {project}",
            payload={"ref": ref, "variables": list(variables)},
            hint=_PROJECT_HINT,
        )
        return _parsed(WirePipeline, body)

    async def cancel_pipeline(self, project: str, pipeline_id: int) -> WirePipeline:
        body, _ = await self.upstream.send_json(
            "POST",
            f"{project_path(project)}/pipelines/{pipeline_id}/cancel",
            what=f"cancel pipeline {pipeline_id} of {project}",
        )
        return _parsed(WirePipeline, body)

    async def retry_pipeline(self, project: str, pipeline_id: int) -> WirePipeline:
        body, _ = await self.upstream.send_json(
            "POST",
            f"{project_path(project)}/pipelines/{pipeline_id}/retry",
            what=f"retry pipeline {pipeline_id} of {project}",
        )
        return _parsed(WirePipeline, body)

    async def play_schedule(self, project: str, schedule_id: int) -> None:
        """Run a schedule now. GitLab answers without the pipeline: it is made shortly
        after, and shows as the schedule's ``last_pipeline``."""
        await self.upstream.send_json(
            "POST",
            f"{project_path(project)}/pipeline_schedules/{schedule_id}/play",
            what=f"run pipeline schedule {schedule_id} of {project}",
        )

    # --- pagination ------------------------------------------------------------------

    async def _list(
        self,
        path: str,
        model: type[M],
        *,
        what: str,
        limit: int,
        params: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> list[M]:
        per_page = max(1, min(limit, _PER_PAGE))
        first = self.upstream.url(path)

        async def fetch(token: httpx.URL | None) -> Page[M, httpx.URL]:
            url = token or first.copy_merge_params({**(params or {}), "per_page": per_page})
            body, response = await self.upstream.send_json("GET", url, what=what, hint=hint)
            items = _parsed_list(model, body)
            return Page(items=items, next=self._next(response, url, per_page, len(items)))

        return await collect(fetch, limit=limit)

    def _next(
        self, response: httpx.Response, url: httpx.URL, per_page: int, count: int
    ) -> httpx.URL | None:
        # Offset pages say X-Next-Page (empty on the last); keyset pages only Link.
        if "x-next-page" in response.headers:
            page = int(url.params.get("page", "1") or 1)
            number = next_page_number(response, page=page, per_page=per_page, count=count)
            return None if number is None else url.copy_set_param("page", number)
        link = next_link(response)
        if link is None:
            return None
        target = httpx.URL(link)
        # A Link to another origin (a proxy that rewrote nothing) is not followed: the
        # token goes only to the tool's own origin anyway, but neither does the walk.
        return target if origin_of(target) == self._origin else None
