"""The provider kit's credentials: which kinds a provider takes and how each is sent.

A provider declares a ``CredentialScheme``: its ``CredentialType``s (by name, with the
``Credentials`` fields each needs) and which of them a caller's own token
(``X-Upstream-Token``) becomes. ToolService checks stored credentials against it, so a
tenant hears at once that GitLab takes no ``basic`` credentials, naming the field.

``CredentialType.apply`` turns credentials into an ``httpx.Auth`` that ``UpstreamHttp``
applies to every request to the tool's origin, and to no other. The kit has the usual
ones: ``bearer`` (``Authorization: Bearer``), ``header_token`` (GitLab
``PRIVATE-TOKEN``, CircleCI ``Circle-Token``) and ``basic`` (Jenkins user + API
token). Anything else is an ``httpx.Auth`` of the provider's own: AWS SigV4 signs the
body, so its auth sets ``requires_request_body = True``. ``apply=None`` means the
provider's client sends them itself (Buildbot logs in for a session cookie).

``Credentials`` has four secret-bearing fields: ``token``, ``username``, ``password``
and ``api_key``. A type names those it needs; for AWS keys, for instance,
``username`` = access key id, ``password`` = secret access key, ``token`` = the
optional session token. Every one of them is redacted from upstream text.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import httpx

from devmesh.domain.models import Credentials

__all__ = [
    "CredentialScheme",
    "CredentialType",
    "HeaderAuth",
    "basic",
    "bearer",
    "header_token",
]

_FIELDS = ("token", "username", "password", "api_key")


class HeaderAuth(httpx.Auth):
    """Sets one header on every request: ``Authorization: Bearer …``, ``PRIVATE-TOKEN``."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request


@dataclass(frozen=True)
class CredentialType:
    """One kind of credentials a provider takes.

    ``fields`` are the ``Credentials`` attributes it needs; ``apply`` makes the
    ``httpx.Auth`` that sends them (``None``: the provider's client does it itself);
    ``description`` tells a tenant what to store.
    """

    name: str
    fields: tuple[str, ...]
    description: str
    apply: Callable[[Credentials], httpx.Auth] | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.fields if name not in _FIELDS]
        if unknown:
            raise ValueError(f"credential type {self.name!r}: unknown fields {unknown}")


def bearer(
    name: str = "bearer", *, description: str = "A token sent as 'Authorization: Bearer'."
) -> CredentialType:
    return CredentialType(
        name=name,
        fields=("token",),
        description=description,
        apply=lambda credentials: HeaderAuth("Authorization", f"Bearer {credentials.token}"),
    )


def header_token(name: str, header: str, *, description: str | None = None) -> CredentialType:
    """A token in a header of its own: ``header_token("private_token", "PRIVATE-TOKEN")``."""
    return CredentialType(
        name=name,
        fields=("token",),
        description=description or f"A token sent as the {header} header.",
        apply=lambda credentials: HeaderAuth(header, credentials.token or ""),
    )


def basic(
    name: str = "basic", *, description: str = "A username and password (or API token), HTTP Basic."
) -> CredentialType:
    return CredentialType(
        name=name,
        fields=("username", "password"),
        description=description,
        apply=lambda credentials: httpx.BasicAuth(
            credentials.username or "", credentials.password or ""
        ),
    )


@dataclass(frozen=True)
class CredentialScheme:
    """The credentials a provider takes; ``passthrough`` names the type a caller's own
    token becomes (its ``token`` field), or is ``None`` if callers cannot send one."""

    types: Sequence[CredentialType] = field(default_factory=lambda: (bearer(),))
    passthrough: str | None = "bearer"

    def __post_init__(self) -> None:
        names = [kind.name for kind in self.types]
        if len(set(names)) != len(names):
            raise ValueError(f"credential types repeat: {names}")
        if self.passthrough is not None:
            kind = self.type(self.passthrough)
            if kind is None or kind.fields != ("token",):
                raise ValueError(
                    f"passthrough {self.passthrough!r} must name a credential type taking a token"
                )

    def names(self) -> list[str]:
        return [kind.name for kind in self.types]

    def type(self, name: str) -> CredentialType | None:
        return next((kind for kind in self.types if kind.name == name), None)

    def problem(self, credentials: Credentials) -> tuple[str, str] | None:
        """``(field, message)`` if these credentials do not fit, else ``None``."""
        kind = self.type(credentials.type)
        if kind is None:
            return "type", f"type must be one of: {', '.join(self.names())}"
        missing = [name for name in kind.fields if not getattr(credentials, name)]
        if missing:
            return missing[0], f"type {kind.name!r} needs {' and '.join(missing)}"
        return None

    def passthrough_credentials(self, token: str) -> Credentials | None:
        if self.passthrough is None:
            return None
        return Credentials(type=self.passthrough, token=token)

    def auth(self, credentials: Credentials | None) -> httpx.Auth | None:
        """How ``UpstreamHttp`` sends these credentials; ``None``: no auth, or the
        provider's own (``apply=None``)."""
        if credentials is None:
            return None
        kind = self.type(credentials.type)
        return kind.apply(credentials) if kind is not None and kind.apply is not None else None
