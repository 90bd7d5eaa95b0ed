"""The AWS SDK (boto3) for CodeBuild, CloudWatch Logs and S3, off the event loop, with
every SDK failure mapped once to the domain's typed errors.

Signing (SigV4), serialising and parsing are botocore's, following each service's
model; each call runs in a worker thread (``asyncio.to_thread``) so the event loop
never waits on the SDK's blocking HTTP. botocore's own retries are off
(``max_attempts=1``): retries, the breaker and rate limits are Developer Mesh's
(``tools/resilience``), and two layers of retries would multiply.

Where requests go: ``base_url`` on ``*.amazonaws.com`` means AWS itself, each service
at its regional endpoint; any other ``base_url`` (LocalStack, moto, a VPC endpoint,
a proxy) is the one endpoint all three services are reached at, S3 path-style. The
SDK has its own HTTP stack (urllib3), so the egress policy's connect-time check does
not see these requests: ``base_url`` is checked when the tool is registered, and the
SDK's endpoints for AWS are fixed public names.

Credentials (``CREDENTIALS``): ``aws_keys``, an access key id (``username``), its
secret (``password``) and, for temporary credentials, a session token (``token``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from devmesh.adapters.credentials import CredentialScheme, CredentialType
from devmesh.adapters.upstream import Redactor
from devmesh.domain.errors import (
    AdapterError,
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.domain.models import Credentials

__all__ = ["CREDENTIALS", "AwsClients", "mapped_error"]

CREDENTIALS = CredentialScheme(
    types=(
        CredentialType(
            name="aws_keys",
            fields=("username", "password"),
            description="An AWS access key id (username) and its secret access key "
            "(password); for temporary credentials also the session token (token).",
            # The SDK signs each request itself (SigV4).
            apply=None,
        ),
    ),
    passthrough=None,
)

_NOT_FOUND = {"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "ResourceNotFound"}
_AUTH = {
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
}
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "RequestThrottled",
}
_INVALID = {"InvalidInputException", "ValidationException", "InvalidParameterException"}


def _retry_after(headers: dict[str, Any]) -> float | None:
    value = str(headers.get("retry-after") or "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def mapped_error(
    exc: Exception, *, what: str, redactor: Redactor, field: str | None = None
) -> AdapterError:
    """The one place an SDK failure becomes a domain error; messages are redacted."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        meta = exc.response.get("ResponseMetadata") or {}
        code = str(error.get("Code") or "")
        status = int(meta.get("HTTPStatusCode") or 0)
        said = redactor.redact(str(error.get("Message") or code or f"HTTP {status}"))[:300]
        text = f"could not {what}: AWS answered {code or status}: {said}"
        if code in _NOT_FOUND or status == 404:
            return UpstreamNotFound(text, details={"field": field} if field else None)
        if code in _AUTH or status in (401, 403):
            return UpstreamAuthFailed(
                f"{text}; check the access key, its secret (and session token), the region, "
                "and that the key's policy allows this CodeBuild, Logs or S3 action"
            )
        if code in _THROTTLED or status == 429:
            headers = meta.get("HTTPHeaders") or {}
            return UpstreamRateLimited(text, retry_after=_retry_after(headers))
        if code in _INVALID or status == 400 or status == 416:
            return UpstreamInvalidArgument(text, details={"field": field or "arguments"})
        if status >= 500 or not status:
            return UpstreamUnavailable(text)
        return AdapterError(text, retriable=False)
    if isinstance(exc, ParamValidationError):
        return UpstreamInvalidArgument(
            f"could not {what}: {redactor.redact(str(exc))[:300]}",
            details={"field": field or "arguments"},
        )
    if isinstance(exc, NoCredentialsError):
        return UpstreamAuthFailed(f"could not {what}: store the tool's AWS access key first")
    if isinstance(exc, ReadTimeoutError):
        return UpstreamTimeout(f"could not {what}: AWS did not answer in time")
    if isinstance(exc, BotoConnectionError | BotoCoreError):
        return UpstreamUnavailable(
            f"could not {what}: AWS could not be reached ({type(exc).__name__})"
        )
    raise exc


def endpoint_of(base_url: str) -> str | None:
    """``None`` for AWS itself (the SDK's regional endpoints), else the one endpoint."""
    host = (httpx.URL(base_url).host or "").lower().rstrip(".")
    return None if host == "amazonaws.com" or host.endswith(".amazonaws.com") else base_url


class AwsClients:
    """One tool instance's boto3 clients (``codebuild``, ``logs``, ``s3``), made when first used."""

    def __init__(
        self,
        *,
        base_url: str,
        region: str,
        credentials: Credentials | None,
        timeout: float,
        verify_tls: bool,
    ) -> None:
        self.region = region
        self.redactor = Redactor.of(credentials)
        endpoint = endpoint_of(base_url)
        config = Config(
            region_name=region,
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            s3={"addressing_style": "path" if endpoint else "auto"},
            user_agent_extra="devmesh",
        )
        session = boto3.session.Session(
            aws_access_key_id=credentials.username if credentials else None,
            aws_secret_access_key=credentials.password if credentials else None,
            aws_session_token=credentials.token if credentials else None,
            region_name=region,
        )
        self._make: Callable[[str], Any] = functools.partial(
            session.client, endpoint_url=endpoint, config=config, verify=verify_tls
        )
        self._clients: dict[str, Any] = {}
        self._making = asyncio.Lock()

    async def client(self, service: str) -> Any:
        """The service's client, made once per tool instance, off the event loop: making
        one reads its service model from disk (0.1 to 0.4 s here)."""
        async with self._making:
            if service not in self._clients:
                self._clients[service] = await asyncio.to_thread(self._make, service)
            return self._clients[service]

    async def call(
        self, service: str, operation: str, *, what: str, field: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``<service client>.<operation>(**kwargs)`` in a worker thread, failures mapped."""
        method = getattr(await self.client(service), operation)
        try:
            answer: dict[str, Any] = await asyncio.to_thread(method, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise mapped_error(exc, what=what, redactor=self.redactor, field=field) from None
        return answer
