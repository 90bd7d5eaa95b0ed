"""Any HTTP API with an OpenAPI description (3.0, 3.1 or Swagger 2.0) as a tool.

Each instance stores its own description: read once from ``spec_url`` at registration
(through the egress policy, so a private address is refused unless the operator allows
it), or given as ``spec`` in the registration request. Its operations are the
description's, selected by ``methods`` (default: GET only), ``tags`` and ``operations``
(operationId globs, offered whatever their method); each is named from its
operationId, takes its parameters and body as arguments, and answers with the API's
status and body, bounded by ``max_response_bytes``. Credentials are sent as the
description's security scheme says (``security_scheme``; default: the first it
names, else a bearer token).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from devmesh.adapters.credentials import CredentialScheme, CredentialType
from devmesh.adapters.operations import JsonArguments, Operation
from devmesh.adapters.registry import Fetch, InstanceDocument, Provider
from devmesh.domain.errors import InvalidInput
from devmesh.providers.openapi.adapter import OpenApiAdapter, OpenApiAnswer, Security
from devmesh.providers.openapi.document import Version, check, version_of
from devmesh.providers.openapi.endpoints import METHODS, Endpoint, endpoints, select

__all__ = ["OpenApiAdapter", "OpenApiConfig", "operations_of", "provider"]

Method = Literal["get", "put", "post", "delete", "options", "head", "patch", "trace"]


class OpenApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec_url: HttpUrl | None = Field(
        default=None,
        description="Where the OpenAPI description is read from, once, at registration "
        "(or when it changes); a `spec` in the request is taken instead.",
    )
    security_scheme: str | None = Field(
        default=None,
        max_length=128,
        description="The description's securitySchemes entry the credentials are sent by "
        "(bearer, basic, or an API key in a header or the query); default: the first the "
        "description requires.",
    )
    methods: list[Method] = Field(
        default_factory=lambda: list[Method](["get"]),
        max_length=len(METHODS),
        description="Offer the operations of these HTTP methods (default: GET only).",
    )
    tags: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Offer only the operations (of `methods`) with one of these tags.",
    )
    operations: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Also offer these operations, whatever their method: operationIds or "
        "names, with * and ? globs ('actions/*-workflow-run').",
    )
    max_response_bytes: int = Field(
        default=100_000,
        ge=1024,
        le=4 * 1024 * 1024,
        description="Answers longer than this are cut, with a hint saying so.",
    )


_CREDENTIALS = CredentialScheme(
    types=(
        # The adapter sends them, as the instance's security scheme says.
        CredentialType("bearer", ("token",), "A token: a bearer token, or an API key."),
        CredentialType("basic", ("username", "password"), "A username and password."),
        CredentialType("api_key", ("api_key",), "An API key, sent where the scheme says."),
    ),
    passthrough="bearer",
)

_SUPPORTED = "bearer or basic HTTP auth, an API key in a header or the query, or OAuth2"


def _security(
    document: Mapping[str, Any], version: Version, wanted: str | None
) -> tuple[str | None, Security | None]:
    """``(name, how)`` of the scheme credentials are sent by (bearer when the
    description names none).
    Raises ``InvalidInput`` (``config.security_scheme``) for a wanted one that is not
    there or cannot be used."""
    if version == "2.0":
        schemes = document.get("securityDefinitions") or {}
    else:
        schemes = (document.get("components") or {}).get("securitySchemes") or {}
    if wanted is None:
        required = [name for need in document.get("security") or [] for name in need or {}]
        usable = [name for name in [*required, *schemes] if _how(schemes.get(name)) is not None]
        if not usable:
            # Many descriptions (GitHub's) name no scheme; a token is then a bearer token.
            return None, Security("bearer")
        wanted = usable[0]
    how = _how(schemes.get(wanted))
    if how is None:
        names = ", ".join(sorted(str(name) for name in schemes)) or "none"
        raise InvalidInput(
            f"security_scheme {wanted!r} is not a scheme of the description this provider "
            f"can use ({_SUPPORTED}); it has: {names}",
            field="config.security_scheme",
        )
    return wanted, how


def _how(scheme: Any) -> Security | None:
    if not isinstance(scheme, Mapping):
        return None
    kind = str(scheme.get("type", "")).lower()
    if kind == "apikey" and scheme.get("in") in ("header", "query") and scheme.get("name"):
        return Security("header" if scheme["in"] == "header" else "query", str(scheme["name"]))
    if kind == "basic" or (kind == "http" and str(scheme.get("scheme")).lower() == "basic"):
        return Security("basic")
    if kind in ("oauth2", "openidconnect") or (
        kind == "http" and str(scheme.get("scheme")).lower() == "bearer"
    ):
        return Security("bearer")
    return None


async def _load(config: BaseModel, given: Mapping[str, Any] | None, fetch: Fetch) -> dict[str, Any]:
    assert isinstance(config, OpenApiConfig)
    if given is None and config.spec_url is None:
        raise InvalidInput(
            "an openapi tool needs its description: config.spec_url or spec",
            field="config.spec_url",
        )
    field = "spec"
    if given is None:
        field = "config.spec_url"
        try:
            raw = await fetch(str(config.spec_url))
        except InvalidInput as exc:
            raise InvalidInput(f"spec_url: {exc.message}", field=field) from None
        given = _parsed(raw, field)
    document = dict(given)
    # A large description takes a moment to check; not on the event loop.
    await asyncio.to_thread(_checked, document, config, field)
    return document


def _checked(document: Mapping[str, Any], config: OpenApiConfig, field: str) -> None:
    version = check(document, field=field)
    _security(document, version, config.security_scheme)
    chosen = select(
        endpoints(document, version),
        tags=config.tags,
        operations=config.operations,
        methods=config.methods,
    )
    if not chosen:
        raise InvalidInput(
            "no operation of the description is selected: check methods, tags and operations",
            field="config",
        )


def _parsed(raw: bytes, field: str) -> Mapping[str, Any]:
    try:
        return json.loads(raw)  # type: ignore[no-any-return]
    except ValueError:
        pass
    try:
        import yaml  # a YAML description; JSON is the common case

        loaded = yaml.safe_load(raw)
    except Exception:
        loaded = None
    if not isinstance(loaded, Mapping):
        raise InvalidInput(f"{field}: the description is neither JSON nor YAML", field=field)
    # YAML keys may be numbers ('200'); JSON's are strings.
    return json.loads(json.dumps(loaded, default=str))  # type: ignore[no-any-return]


class _LazySchema(Mapping[str, Any]):
    """A schema built on first read: listing builds it, registering does not."""

    def __init__(self, build: Any) -> None:
        self._build = build
        self._value: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._value is None:
            self._value = self._build()
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Any:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def _output_schema(endpoint: Endpoint) -> dict[str, Any]:
    schema = OpenApiAnswer.model_json_schema()
    if (answer := endpoint.response_schema) is not None:
        # The cut or non-JSON answer is text, so text is always allowed too.
        schema["properties"]["body"] = {
            "description": schema["properties"]["body"].get("description", ""),
            "anyOf": [answer, {"type": "string"}, {"type": "null"}],
        }
    return schema


def _operation(endpoint: Endpoint, security: Security | None) -> Operation[OpenApiAdapter]:
    async def run(adapter: OpenApiAdapter, args: JsonArguments) -> OpenApiAnswer:
        return await adapter.call(endpoint, args.values, security)

    method = endpoint.method
    summary = endpoint.summary or f"{method.upper()} {endpoint.path}"
    return Operation(
        name=endpoint.name,
        summary=f"{summary} ({method.upper()} {endpoint.path})",
        input_model=JsonArguments,
        output_model=OpenApiAnswer,
        input_schema=_LazySchema(lambda: endpoint.input_schema),
        output_schema=_LazySchema(lambda: _output_schema(endpoint)),
        run=run,
        read_only=method in ("get", "head", "options"),
        destructive=method == "delete",
        idempotent=method in ("get", "head", "options", "put", "delete"),
        toolset=endpoint.tags[0].lower() if endpoint.tags else None,
    )


def operations_of(document: Mapping[str, Any], config: BaseModel) -> Sequence[Operation[Any]]:
    """The operations an instance with this stored description and config offers."""
    assert isinstance(config, OpenApiConfig)
    version = version_of(document, field="spec")
    _, security = _security(document, version, config.security_scheme)
    chosen = select(
        endpoints(document, version),
        tags=config.tags,
        operations=config.operations,
        methods=config.methods,
    )
    return [_operation(endpoint, security) for endpoint in chosen]


provider = Provider(
    name="openapi",
    title="OpenAPI",
    description=(
        "Any HTTP API with an OpenAPI description: each operation of the description is a "
        "tool, named from its operationId, taking its path, query and header parameters "
        "by name and its request body as 'body'. Answers carry the HTTP status and the "
        "body (JSON decoded, other text as text); long answers are cut, with a hint."
    ),
    create_adapter=OpenApiAdapter,
    operations=(),
    config_model=OpenApiConfig,
    credentials=_CREDENTIALS,
    document=InstanceDocument(load=_load, operations=operations_of),
)
