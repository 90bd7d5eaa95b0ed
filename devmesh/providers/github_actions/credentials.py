"""The credentials GitHub takes: tokens, and GitHub App installation tokens.

* ``bearer`` (``token`` is the same): a fine-grained (``github_pat_…``) or classic
  (``ghp_…``) personal access token, or an installation token made elsewhere
  (``ghs_…``), sent as ``Authorization: Bearer``. A caller's own token passes through
  as ``bearer``.
* ``github_app``: ``username`` is the app's id (or client id), ``password`` its private
  key (PEM). The tool's ``config.installation_id`` names the installation to act as.
  ``AppInstallationAuth`` signs a ten-minute JWT (RS256) with the key, exchanges it at
  ``POST /app/installations/{id}/access_tokens`` for an installation token, and keeps
  that until five minutes before its ``expires_at``. The exchange is a sub-request of
  the auth flow, so it travels the same egress-checked client, to the tool's own origin.

The key and every token stay out of messages: failures name the step and status only,
and each installation token is handed to the redactor before it is used.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime, timedelta

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import ValidationError

from devmesh.adapters.credentials import CredentialScheme, CredentialType, bearer
from devmesh.domain.errors import (
    AdapterError,
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from devmesh.domain.models import Credentials
from devmesh.providers.github_actions.models import WireToken

__all__ = ["CREDENTIALS", "AppInstallationAuth", "app_jwt"]

_JWT_LIFETIME_S = 540  # GitHub accepts at most ten minutes
_CLOCK_SKEW_S = 60
_REFRESH_BEFORE = timedelta(minutes=5)

CREDENTIALS = CredentialScheme(
    types=(
        bearer(
            description="A GitHub fine-grained or classic personal access token (or an "
            "installation token), sent as 'Authorization: Bearer'; it needs Actions "
            "read and write on the repositories."
        ),
        bearer(
            "token",
            description="The same as bearer, under the name GitHub's documentation uses.",
        ),
        CredentialType(
            name="github_app",
            fields=("username", "password"),
            description="A GitHub App: username = the app id (or client id), password = its "
            "private key (PEM); the tool's config.installation_id names the installation.",
        ),
    ),
    passthrough="bearer",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def app_jwt(app_id: str, key: rsa.RSAPrivateKey, *, now: float | None = None) -> str:
    """A JWT (RS256) that authenticates as the app for up to ten minutes.

    ``iat`` is a minute in the past, as GitHub advises, against clock drift."""
    issued = int(now if now is not None else time.time()) - _CLOCK_SKEW_S
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": issued, "exp": issued + _CLOCK_SKEW_S + _JWT_LIFETIME_S, "iss": app_id}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise UpstreamInvalidArgument(
            "credentials.password must be the GitHub App's private key (PEM, as GitHub "
            "downloads it); it could not be read",
            details={"field": "credentials.password"},
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UpstreamInvalidArgument(
            "credentials.password must be an RSA private key: GitHub App keys are RSA",
            details={"field": "credentials.password"},
        )
    return key


class AppInstallationAuth(httpx.Auth):
    """``Authorization: Bearer <installation token>``, exchanged and refreshed as needed."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        api_root: str,
        installation_id: int | None,
        on_token: Callable[[str], None],
    ) -> None:
        self._app_id = credentials.username or ""
        self._pem = credentials.password or ""
        self._key: rsa.RSAPrivateKey | None = None
        self._api_root = api_root.rstrip("/")
        self._installation_id = installation_id
        self._on_token = on_token
        self._token: WireToken | None = None

    def _fresh(self) -> str | None:
        token = self._token
        if token is None or token.expires_at - datetime.now(UTC) < _REFRESH_BEFORE:
            return None
        return token.token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._fresh()
        if token is None:
            if self._installation_id is None:
                raise UpstreamInvalidArgument(
                    "github_app credentials need the tool's config.installation_id: the "
                    "installation of the app on the repositories' account",
                    details={"field": "config.installation_id"},
                )
            if self._key is None:
                self._key = _private_key(self._pem)
            exchange = httpx.Request(
                "POST",
                f"{self._api_root}/app/installations/{self._installation_id}/access_tokens",
                headers={
                    "Authorization": f"Bearer {app_jwt(self._app_id, self._key)}",
                    "Accept": "application/vnd.github+json",
                },
            )
            response = yield exchange
            await response.aread()
            token = self._accept(response)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def _accept(self, response: httpx.Response) -> str:
        status = response.status_code
        what = "exchange the GitHub App's key for an installation token"
        details = {"operation": what, "status": status}
        if status == 429 or (status == 403 and "retry-after" in response.headers):
            raise UpstreamRateLimited(f"github is limiting requests and refused to {what}",
                                      details=details)  # fmt: skip
        if status in (401, 403, 404):
            raise UpstreamAuthFailed(
                f"github refused to {what} (HTTP {status}); check the app id, that the key "
                "is the app's current one and that config.installation_id is an "
                "installation of this app",
                details=details,
            )
        if status >= 500:
            raise UpstreamUnavailable(f"github is unavailable and could not {what}",
                                      details=details)  # fmt: skip
        try:
            token = WireToken.model_validate_json(response.content)
        except ValidationError as exc:
            raise AdapterError(f"github answered the request to {what} with something other "
                               "than an installation token", details=details) from exc  # fmt: skip
        self._on_token(token.token)
        self._token = token
        return token.token
