"""A typed client for GitHub's REST API (Actions part), on the provider kit.

``base_url`` is the API's root: ``https://api.github.com`` by default; a GitHub
Enterprise Server gives ``https://ghe.example.com/api/v3``. Every request sends
``Accept: application/vnd.github+json`` and the API version it was written against
(``X-GitHub-Api-Version: 2022-11-28``).

Failures arrive as ``AdapterError``s from the kit: 401 a bad token, 403 a missing
permission, 403 or 429 with ``X-RateLimit-Remaining: 0`` or ``Retry-After`` (the
primary and secondary rate limits) ``UpstreamRateLimited`` with the wait GitHub asks
for (``Retry-After``, else ``X-RateLimit-Reset``). GitHub answers 404 for a repository
the token may not see as well as for a missing one; the hint says so.

Logs and artifact archives are answered with a redirect to a signed URL on another
host; the kit follows it (``HttpPolicy(follow_redirects=True)``) without the
``Authorization`` header, which goes to the API's own origin only. Both are read
bounded: logs keep their end (``read_tail``), archives are spooled up to a cap.
"""

from __future__ import annotations

import email.utils
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from devmesh.adapters.egress import origin_of
from devmesh.adapters.http import UnexpectedAnswer, UpstreamHttp, Window
from devmesh.adapters.pagination import Page, collect, next_link
from devmesh.adapters.registry import Connection
from devmesh.adapters.tailing import Tail, read_tail
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.providers.github_actions.credentials import CREDENTIALS, AppInstallationAuth
from devmesh.providers.github_actions.ids import RunRef
from devmesh.providers.github_actions.models import (
    WireArtifact,
    WireDispatch,
    WireJob,
    WireRepository,
    WireRun,
    WireWorkflow,
)

__all__ = ["GitHubClient"]

M = TypeVar("M", bound=BaseModel)

_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_PER_PAGE = 100
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_REPO_HINT = (
    "GitHub answers 'not found' for a repository the token may not see as well as for a "
    "missing one: check 'owner/repo' and that the token (or app installation) has access"
)


def _auth_advice(credentials_sent: bool) -> str:
    if not credentials_sent:
        return "GitHub needs a token for this: store a token or GitHub App for the tool"
    return (
        "check that the token is right and not expired, and that it may use Actions on the "
        "repository (fine-grained: Actions read and write; classic: the repo and workflow "
        "scopes; an app: the Actions permission)"
    )


def _parsed(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a GitHub {model.__name__}") from exc


def _parsed_list(model: type[M], body: Any, key: str) -> list[M]:
    items = body.get(key) if isinstance(body, dict) else None
    try:
        return TypeAdapter(list[model]).validate_python(items)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a list of GitHub {model.__name__}") from exc


def _date(response: httpx.Response) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _repo(repo: str) -> str:
    owner, name = repo.split("/", 1)
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _run(ref: RunRef) -> str:
    base = f"{_repo(ref.repo)}/actions/runs/{ref.run_id}"
    return base if ref.attempt is None else f"{base}/attempts/{ref.attempt}"


class GitHubClient:
    """GitHub's REST API for one tool instance."""

    def __init__(
        self, connection: Connection, *, timeout: float, installation_id: int | None
    ) -> None:
        root = connection.base_url.rstrip("/")
        credentials = connection.credentials
        auth: httpx.Auth | None = CREDENTIALS.auth(credentials)
        if credentials is not None and credentials.type == "github_app":
            # Not the kit's to make: it needs the API root and the installation, and it
            # hands each new token to the redactor.
            auth = AppInstallationAuth(
                credentials, api_root=root, installation_id=installation_id, on_token=self._redact
            )
        self.upstream: UpstreamHttp = connection.upstream(
            name="github",
            auth=auth,
            timeout=timeout,
            base_url=root,
            auth_advice=_auth_advice,
            base_url_hint="check that base_url is GitHub's API root, e.g. https://api.github.com "
            "or https://ghe.example.com/api/v3",
        )
        self._origin = origin_of(root)

    def _redact(self, token: str) -> None:
        self.upstream.redactor.add(token)

    # --- reads -----------------------------------------------------------------------

    async def rate_limit(self) -> None:
        await self.upstream.get_json("/rate_limit", what="read the rate limit", headers=_HEADERS)

    async def repository(self, repo: str) -> WireRepository:
        body = await self.upstream.get_json(
            _repo(repo), what=f"read repository {repo}", headers=_HEADERS, hint=_REPO_HINT
        )
        return _parsed(WireRepository, body)

    async def workflows(self, repo: str) -> list[WireWorkflow]:
        return await self._list(
            f"{_repo(repo)}/actions/workflows", "workflows", WireWorkflow,
            what=f"list the workflows of {repo}", limit=_PER_PAGE,
        )  # fmt: skip

    async def runs(
        self, repo: str, *, workflow: str | None, limit: int, **filters: str
    ) -> list[WireRun]:
        """Runs newest first; ``filters`` are GitHub's (``status``, ``branch``, ``event``,
        ``created``)."""
        where = f"{_repo(repo)}/actions/runs"
        if workflow is not None:
            where = f"{_repo(repo)}/actions/workflows/{quote(workflow, safe='')}/runs"
        return await self._list(
            where, "workflow_runs", WireRun, what=f"list the workflow runs of {repo}",
            limit=limit, params=filters, hint=_REPO_HINT,
        )  # fmt: skip

    async def run(self, ref: RunRef) -> WireRun:
        body = await self.upstream.get_json(
            _run(ref), what=f"read workflow run {ref}", headers=_HEADERS, hint=_REPO_HINT
        )
        return _parsed(WireRun, body)

    async def jobs(self, ref: RunRef, *, limit: int) -> list[WireJob]:
        """The jobs of the run's latest attempt, or of the attempt ``ref`` names."""
        params = {"filter": "latest"} if ref.attempt is None else {}
        return await self._list(
            f"{_run(ref)}/jobs", "jobs", WireJob, what=f"list the jobs of workflow run {ref}",
            limit=limit, params=params,
        )  # fmt: skip

    async def job(self, repo: str, job_id: int) -> WireJob:
        body = await self.upstream.get_json(
            f"{_repo(repo)}/actions/jobs/{job_id}", what=f"read job {job_id} of {repo}",
            headers=_HEADERS,
        )  # fmt: skip
        return _parsed(WireJob, body)

    async def job_log(self, repo: str, job_id: int, *, max_bytes: int) -> Tail:
        """The end of a job's log (at most ``max_bytes``), from wherever GitHub redirects."""
        async with self.upstream.stream(
            "GET", f"{_repo(repo)}/actions/jobs/{job_id}/logs",
            what=f"read the log of job {job_id} of {repo}", headers=_HEADERS,
        ) as response:  # fmt: skip
            return await read_tail(response, limit=max_bytes)

    async def job_log_window(self, repo: str, job_id: int, *, offset: int, limit: int) -> Window:
        return await self.upstream.read_window(
            f"{_repo(repo)}/actions/jobs/{job_id}/logs", offset=offset, limit=limit,
            what=f"read the log of job {job_id} of {repo}", headers=_HEADERS,
        )  # fmt: skip

    async def artifacts(self, ref: RunRef, *, limit: int) -> list[WireArtifact]:
        return await self._list(
            f"{_repo(ref.repo)}/actions/runs/{ref.run_id}/artifacts", "artifacts", WireArtifact,
            what=f"list the artifacts of workflow run {ref}", limit=limit,
        )  # fmt: skip

    async def artifact(self, repo: str, artifact_id: int) -> WireArtifact:
        body = await self.upstream.get_json(
            f"{_repo(repo)}/actions/artifacts/{artifact_id}",
            what=f"read artifact {artifact_id} of {repo}", headers=_HEADERS,
        )  # fmt: skip
        return _parsed(WireArtifact, body)

    async def archive_window(
        self, repo: str, artifact_id: int, *, offset: int, limit: int
    ) -> Window:
        return await self.upstream.read_window(
            f"{_repo(repo)}/actions/artifacts/{artifact_id}/zip", offset=offset, limit=limit,
            what=f"download artifact {artifact_id} of {repo}", headers=_HEADERS,
        )  # fmt: skip

    async def archive(self, repo: str, artifact_id: int, *, max_bytes: int) -> IO[bytes]:
        """The artifact's zip, spooled (memory, then disk), refused beyond ``max_bytes``."""
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            async with self.upstream.stream(
                "GET", f"{_repo(repo)}/actions/artifacts/{artifact_id}/zip",
                what=f"download artifact {artifact_id} of {repo}", headers=_HEADERS,
            ) as response:  # fmt: skip
                written = 0
                async for piece in response.aiter_bytes():
                    written += len(piece)
                    if written > max_bytes:
                        raise UpstreamInvalidArgument(
                            f"artifact {artifact_id} is larger than max_archive_bytes "
                            f"({max_bytes}); read the zip itself in windows instead",
                            details={"field": "artifact_id"},
                        )
                    spool.write(piece)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    # --- writes ----------------------------------------------------------------------

    async def dispatch(
        self, repo: str, workflow: str, *, ref: str, inputs: Mapping[str, str]
    ) -> tuple[WireDispatch | None, datetime | None]:
        """Start the workflow on ``ref``: the run's id where GitHub says it (current API
        versions, ``return_run_details``), ``None`` where it answers 204 without it;
        and when, by GitHub's clock (the answer's ``Date``)."""
        async with self.upstream.stream(
            "POST",
            f"{_repo(repo)}/actions/workflows/{quote(workflow, safe='')}/dispatches",
            what=f"dispatch workflow {workflow} of {repo} on {ref!r}",
            payload={"ref": ref, "inputs": dict(inputs), "return_run_details": True},
            headers=_HEADERS,
            hint=_REPO_HINT,
        ) as response:
            await response.aread()
            server_time = _date(response)
            if response.status_code == 204 or not response.content:
                return None, server_time
            try:
                body = response.json()
            except ValueError as exc:
                raise UnexpectedAnswer("not JSON") from exc
            return _parsed(WireDispatch, body), server_time

    async def cancel(self, repo: str, run_id: int) -> None:
        await self.upstream.send_json(
            "POST", f"{_repo(repo)}/actions/runs/{run_id}/cancel",
            what=f"cancel workflow run {run_id} of {repo}", headers=_HEADERS,
        )  # fmt: skip

    async def rerun(self, repo: str, run_id: int, *, failed_only: bool) -> None:
        tail = "rerun-failed-jobs" if failed_only else "rerun"
        what = "re-run the failed jobs of" if failed_only else "re-run"
        await self.upstream.send_json(
            "POST", f"{_repo(repo)}/actions/runs/{run_id}/{tail}",
            what=f"{what} workflow run {run_id} of {repo}", headers=_HEADERS,
        )  # fmt: skip

    # --- pagination ------------------------------------------------------------------

    async def _list(
        self, path: str, key: str, model: type[M], *, what: str, limit: int,
        params: Mapping[str, str] | None = None, hint: str | None = None,
    ) -> list[M]:  # fmt: skip
        per_page = max(1, min(limit, _PER_PAGE))
        first = self.upstream.url(path).copy_merge_params({**(params or {}), "per_page": per_page})

        async def fetch(token: httpx.URL | None) -> Page[M, httpx.URL]:
            url = token or first
            body, response = await self.upstream.send_json(
                "GET", url, what=what, headers=_HEADERS, hint=hint
            )
            return Page(items=_parsed_list(model, body, key), next=self._next(response))

        return await collect(fetch, limit=limit)

    def _next(self, response: httpx.Response) -> httpx.URL | None:
        link = next_link(response)
        if link is None:
            return None
        target = httpx.URL(link)
        # Only our own origin's pages are walked (a proxy that rewrote nothing is not).
        return target if origin_of(target) == self._origin else None
