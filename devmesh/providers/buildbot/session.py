"""How the Buildbot client reaches the master: the kit's ``UpstreamHttp``, plus login.

``basic`` credentials log in through ``GET /auth/login``, because Buildbot refuses
basic auth on the API itself; the session cookie is kept per session (so per
adapter) and sent by hand, since the shared httpx client keeps no cookies. A master
reads an expired session as anonymous, so the first 401/403 after an old session
logs in again, once. ``bearer`` and ``personal_access_token`` credentials go as
``Authorization: Bearer`` (the kit's ``bearer``), for masters behind a proxy that
checks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from devmesh.adapters.credentials import CredentialScheme, CredentialType, bearer
from devmesh.adapters.http import HttpPolicy, UnexpectedAnswer, UpstreamHttp, public_address
from devmesh.adapters.upstream import Redactor, join_url
from devmesh.domain.errors import UpstreamAuthFailed
from devmesh.domain.models import Credentials

__all__ = ["BASE_URL_HINT", "CREDENTIALS", "BuildbotSession"]

T = TypeVar("T")

_SESSION_COOKIE = "TWISTED_SESSION"
BASE_URL_HINT = "check that base_url is the master's root URL, e.g. http://buildbot:8010"

CREDENTIALS = CredentialScheme(
    types=(
        # Sent by logging in (``BuildbotSession._login``), not per request: no ``apply``.
        CredentialType(
            name="basic",
            fields=("username", "password"),
            description="A Buildbot user's username and password; the service logs in "
            "with them (GET /auth/login) and uses the session.",
        ),
        bearer(description="A token for a proxy in front of the master (Authorization: Bearer)."),
        bearer(
            "personal_access_token",
            description="The same as bearer, under the name other providers use.",
        ),
    ),
    passthrough="bearer",
)


def _error_text(response: httpx.Response) -> str:
    """Only Buildbot's ``error`` field of an error answer, never the rest of the body."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return error_words(body.get("error"))


def error_words(error: Any) -> str:
    """Buildbot's own error words, raw: a REST ``error`` string or a JSON-RPC error object.

    Raw means unsafe to show: it goes through ``Redactor.excerpt`` first.
    """
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            # Force-form validation errors come keyed by field name.
            return "; ".join(f"{key}: {value}" for key, value in message.items())
        return str(message) if message is not None else ""
    return str(error) if error else ""


class BuildbotSession:
    """Requests to one master's REST API, with its credentials applied."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        credentials: Credentials | None,
        timeout: float,
        policy: HttpPolicy | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        # People paste the API's address as often as the master's; both mean the master.
        root = root.removesuffix("/api/v2").rstrip("/")
        self.base_url = root
        self._http = http
        self._credentials = credentials
        self._timeout = timeout
        self.upstream = UpstreamHttp(
            name="buildbot",
            base_url=str(join_url(root, "/api/v2")),
            http=http,
            # Every secret this session sends, login sessions included, is cut out of
            # upstream text.
            redactor=Redactor.of(credentials),
            timeout=timeout,
            auth=CREDENTIALS.auth(credentials),
            policy=policy,
            error_text=_error_text,
            auth_advice=lambda _: self._auth_advice(),
            base_url_hint=BASE_URL_HINT,
        )
        # Where messages say the master is: its root, not the API under it.
        self.upstream.where = public_address(root)
        self._session: str | None = None
        self._login_lock = asyncio.Lock()

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        what: str,
        handle: Callable[[httpx.Response], Awaitable[T]],
        params: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> T:
        """One request, its answer streamed to ``handle`` once it is a success.

        A refusal with a session from an earlier call is retried once after logging in
        again; a refusal of a session made for this call is the answer.
        """
        for attempt in (1, 2):
            headers, session = await self._auth_headers()
            retry_refusal = session is not None and attempt == 1
            async with self.upstream.stream(
                method,
                path,
                what=what,
                params=params,
                payload=payload,
                headers=headers,
                passing=(401, 403) if retry_refusal else (),
                hint=hint,
            ) as response:
                if response.status_code in (401, 403):
                    async with self._login_lock:
                        # Another call may have logged in again meanwhile; keep its session.
                        if self._session == session:
                            self._session = None
                    continue
                return await handle(response)
        raise AssertionError("unreachable: the second attempt always returns or raises")

    async def _auth_headers(self) -> tuple[dict[str, str], str | None]:
        """Headers for one request, and the session used if it predates this call."""
        creds = self._credentials
        if creds is None or CREDENTIALS.auth(creds) is not None:
            return {}, None
        if creds.type == "basic":
            async with self._login_lock:
                if self._session is None:
                    self._session = await self._login(creds)
                    return {"Cookie": f"{_SESSION_COOKIE}={self._session}"}, None
                return {"Cookie": f"{_SESSION_COOKIE}={self._session}"}, self._session
        raise UpstreamAuthFailed(
            "Buildbot tools take basic credentials (username and password), or a bearer "
            f"token for a proxy in front of the master; {creds.type!r} credentials cannot be used"
        )

    async def _login(self, creds: Credentials) -> str:
        assert creds.username is not None and creds.password is not None
        async with self.upstream.mapped(
            "log in",
            hint="if the master has no login configured (www auth), remove the tool's credentials",
        ):
            response = await self._http.get(
                join_url(self.base_url, "/auth/login"),
                auth=httpx.BasicAuth(creds.username, creds.password),
                timeout=self._timeout,
            )
            session = response.cookies.get(_SESSION_COOKIE)
            if session:
                self.upstream.redactor.add(session)
            else:
                response.raise_for_status()
                raise UnexpectedAnswer("a login without a session cookie")
        return session

    def _auth_advice(self) -> str:
        creds = self._credentials
        if creds is None:
            return (
                "this master needs a login for that: store basic credentials "
                "(username and password) for the tool"
            )
        if creds.type == "basic":
            return "check the tool's username and password, and that this Buildbot user may do this"
        return (
            "the tool's token was refused; Buildbot itself logs in with basic credentials "
            "(username and password)"
        )
