"""A typed client for Jenkins' remote access API (``…/api/json``), on the provider kit.

Every request goes through the kit's ``UpstreamHttp``, so failures arrive as
``AdapterError``s already: 401 is a wrong user or API token, 403 a missing permission
(or a missing CSRF crumb, which is handled here), 404 a job, build or queue item
Jenkins does not have (or hides from this user: Jenkins answers 404 for jobs one may
not read).

Credentials (``CREDENTIALS``): a user and an API token, HTTP Basic, as Jenkins'
"Remote Access API" page advises for scripts. A caller's own token cannot pass
through: Jenkins needs the user's name with it.

CSRF: a controller with CSRF protection wants a crumb on every POST
(``/crumbIssuer/api/json`` → ``{crumb, crumbRequestField}``, sent as that header).
Since 2.176.2 requests authenticated by API token are exempt, so the crumb is asked
for once, lazily; a controller without a crumb issuer (404) gets none, and a POST
refused for want of one (403 naming the crumb) fetches a fresh one and is sent once more:
a refused POST did nothing, so sending it again cannot act twice.

Answers are kept small with ``tree=`` (only the fields the wire models read).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from devmesh.adapters.credentials import CredentialScheme, basic
from devmesh.adapters.http import UnexpectedAnswer, UpstreamHttp, Window, read_window
from devmesh.adapters.registry import Connection
from devmesh.adapters.tailing import Tail, read_tail
from devmesh.domain.errors import UpstreamNotFound
from devmesh.providers.jenkins.ids import job_path
from devmesh.providers.jenkins.models import WireBuild, WireJob, WireQueueItem

__all__ = ["BUILD_TREE", "CREDENTIALS", "JenkinsClient"]

M = TypeVar("M", bound=BaseModel)

CREDENTIALS = CredentialScheme(
    types=(
        basic(
            "api_token",
            description="A Jenkins user name (username) and one of its API tokens "
            "(password; made on the user's Security page), sent with HTTP Basic.",
        ),
        basic(
            "basic",
            description="The same as api_token: a user name and an API token (or password).",
        ),
    ),
    passthrough=None,
)

BUILD_TREE = (
    "number,url,building,result,timestamp,duration,queueId,description,"
    "actions[parameters[name,value],causes[shortDescription],"
    "lastBuiltRevision[SHA1,branch[name]]],"
    "artifacts[fileName,relativePath,displayPath]"
)
_JOB_TREE = "name,fullName,url,buildable,jobs[name],property[parameterDefinitions[name,type]]"
_QUEUE_TREE = "id,why,cancelled,inQueueSince,task[name,url],executable[number,url]"
_QUEUE_ITEM = re.compile(r"/queue/item/(?P<id>[0-9]{1,18})/?$")
_JOB_HINT = (
    "Jenkins answers 'not found' for a job the user may not read as well as for a missing "
    "one: check the job's full name (folders joined by '/') and the user's permissions"
)


def _auth_advice(credentials_sent: bool) -> str:
    if not credentials_sent:
        return "this Jenkins needs credentials: store a user name and API token for the tool"
    return (
        "check the user name and API token (a token is revoked when its user deletes it) "
        "and that the user may read, build and cancel this job"
    )


def _parsed(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise UnexpectedAnswer(f"not a Jenkins {model.__name__}") from exc


class JenkinsClient:
    """One Jenkins controller; base_url is its root (``https://ci.example.com/jenkins``)."""

    def __init__(self, connection: Connection, *, timeout: float) -> None:
        self.root = connection.base_url.rstrip("/")
        self.upstream: UpstreamHttp = connection.upstream(
            name="jenkins",
            auth=CREDENTIALS.auth(connection.credentials),
            timeout=timeout,
            base_url=self.root,
            auth_advice=_auth_advice,
            base_url_hint="check that base_url is the Jenkins root URL (with its context "
            "path, e.g. https://ci.example.com/jenkins)",
        )
        self._crumb: dict[str, str] | None = None
        self._crumb_known = False

    # --- reads -----------------------------------------------------------------------

    async def whoami(self) -> None:
        await self.upstream.get_json(
            "/api/json", what="read the Jenkins root", params={"tree": "mode"}
        )

    async def job(self, job: str) -> WireJob:
        async with self.upstream.mapped(f"read job {job}", hint=_JOB_HINT):
            body = await self.upstream.get_json(
                f"{job_path(job)}/api/json",
                what=f"read job {job}",
                params={"tree": _JOB_TREE},
                hint=_JOB_HINT,
            )
            return _parsed(WireJob, body)

    async def builds(self, job: str, *, limit: int) -> list[WireBuild]:
        """The job's newest builds, newest first (Jenkins' order), at most ``limit``."""
        async with self.upstream.mapped(f"list builds of {job}", hint=_JOB_HINT):
            body = await self.upstream.get_json(
                f"{job_path(job)}/api/json",
                what=f"list builds of {job}",
                params={"tree": f"builds[{BUILD_TREE}]{{0,{limit}}}"},
                hint=_JOB_HINT,
            )
            if not isinstance(body, dict) or not isinstance(body.get("builds", []), list):
                raise UnexpectedAnswer("not a Jenkins job")
            return [_parsed(WireBuild, item) for item in body.get("builds") or []]

    async def build(self, job: str, number: int) -> WireBuild:
        async with self.upstream.mapped(f"read build {job}#{number}", hint=_JOB_HINT):
            body = await self.upstream.get_json(
                f"{job_path(job)}/{number}/api/json",
                what=f"read build {job}#{number}",
                params={"tree": BUILD_TREE},
                hint=_JOB_HINT,
            )
            return _parsed(WireBuild, body)

    async def queue_item(self, queue_id: int) -> WireQueueItem | None:
        """The queue item, or ``None`` once Jenkins has forgotten it (minutes after it left)."""
        try:
            async with self.upstream.mapped(f"read queue item {queue_id}"):
                body = await self.upstream.get_json(
                    f"/queue/item/{queue_id}/api/json",
                    what=f"read queue item {queue_id}",
                    params={"tree": _QUEUE_TREE},
                )
                return _parsed(WireQueueItem, body)
        except UpstreamNotFound:
            return None

    async def console_tail(self, job: str, number: int, *, max_bytes: int) -> Tail:
        """The end of a build's console text (``consoleText``): at most ``max_bytes``."""
        async with self.upstream.stream(
            "GET", f"{job_path(job)}/{number}/consoleText", what=f"read the log of {job}#{number}"
        ) as response:
            return await read_tail(response, limit=max_bytes)

    async def console_window(self, job: str, number: int, *, offset: int, limit: int) -> Window:
        """Console bytes from ``offset`` (``progressiveText?start=``): while the build
        runs, ``X-More-Data: true`` says more will come; ``X-Text-Size`` is where the
        text sent ends, so the whole size once it is final."""
        async with self.upstream.stream(
            "GET",
            f"{job_path(job)}/{number}/logText/progressiveText",
            what=f"read the log of {job}#{number}",
            params={"start": offset},
        ) as response:
            window = await read_window(response, offset=0, limit=limit)
            growing = response.headers.get("x-more-data", "").lower() == "true"
            size = response.headers.get("x-text-size", "")
        return Window(
            data=window.data,
            more=window.more or growing,
            size=int(size) if size.isdigit() and not growing else None,
            content_type="text/plain",
        )

    async def artifact_window(
        self, job: str, number: int, path: str, *, offset: int, limit: int
    ) -> Window:
        return await self.upstream.read_window(
            f"{job_path(job)}/{number}/artifact/{quote(path, safe='/')}",
            offset=offset,
            limit=limit,
            what=f"read artifact {path} of {job}#{number}",
        )

    # --- writes ----------------------------------------------------------------------

    async def trigger(self, job: str, *, parameters: Mapping[str, str] | None) -> int:
        """Queue a build (``buildWithParameters`` when ``parameters`` is given, else
        ``build``); the queue item's id, from the ``Location`` Jenkins answers with."""
        verb = "buildWithParameters" if parameters is not None else "build"
        response = await self._post(
            f"{job_path(job)}/{verb}",
            what=f"start a build of {job}",
            params=dict(parameters or {}),
            passing=(),
            hint=_JOB_HINT,
        )
        match = _QUEUE_ITEM.search(httpx.URL(response.headers.get("location", "")).path)
        if match is None:
            async with self.upstream.mapped(f"start a build of {job}"):
                raise UnexpectedAnswer("no queue item in Location")
        return int(match.group("id"))

    async def stop(self, job: str, number: int) -> None:
        # Jenkins answers a stop with a redirect to the build's page.
        await self._post(
            f"{job_path(job)}/{number}/stop",
            what=f"stop build {job}#{number}",
            passing=(302, 303),
        )

    async def cancel_queue_item(self, queue_id: int) -> None:
        # Older controllers redirect to the queue page; newer ones answer 204.
        await self._post(
            "/queue/cancelItem",
            what=f"cancel queue item {queue_id}",
            params={"id": str(queue_id)},
            passing=(302, 303),
        )

    # --- CSRF crumbs -----------------------------------------------------------------

    async def _post(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        passing: tuple[int, ...],
        hint: str | None = None,
    ) -> httpx.Response:
        for attempt in range(2):
            headers = await self._crumb_header(fresh=attempt > 0)
            async with self.upstream.stream(
                "POST",
                path,
                what=what,
                params=params,
                headers=headers,
                passing=(*passing, 403),
                hint=hint,
            ) as response:
                await response.aread()
                if response.status_code != 403:
                    return response
                if attempt == 0 and b"crumb" in response.content.lower():
                    continue
                raise self.upstream.status_error(response, what, hint=hint)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _crumb_header(self, *, fresh: bool) -> dict[str, str]:
        if fresh or not self._crumb_known:
            try:
                body = await self.upstream.get_json(
                    "/crumbIssuer/api/json", what="get a CSRF crumb"
                )
            except UpstreamNotFound:
                self._crumb = None  # CSRF protection is off
            else:
                if not isinstance(body, dict) or not {"crumb", "crumbRequestField"} <= set(body):
                    async with self.upstream.mapped("get a CSRF crumb"):
                        raise UnexpectedAnswer("not a crumb")
                self._crumb = {str(body["crumbRequestField"]): str(body["crumb"])}
                self.upstream.redactor.add(str(body["crumb"]))
            self._crumb_known = True
        return dict(self._crumb or {})
