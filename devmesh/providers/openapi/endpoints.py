"""The operations of an OpenAPI description, as a tool instance offers them.

``endpoints`` walks ``paths`` once, cheaply: method, path, name, summary, tags. Only
when an operation is listed or called is its input schema built (``Endpoint.arguments``:
every path, query and header parameter by name, and the request body as ``body``),
so a description with a thousand operations registers and loads in a moment.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from devmesh.providers.openapi.document import Version
from devmesh.providers.openapi.schemas import Resolver

__all__ = ["METHODS", "Argument", "Body", "Endpoint", "endpoints", "select"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SUMMARY = 400
_NOT_A_NAME = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# OpenAPI 3: these header parameters are ignored; the client sets them.
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})

Location = Literal["path", "query", "header", "cookie"]


@dataclass(frozen=True)
class Argument:
    """One parameter, as the operation's input names it and the request sends it."""

    key: str
    name: str
    location: Location
    style: str
    explode: bool


@dataclass(frozen=True)
class Body:
    key: str
    media_type: str
    kind: Literal["json", "form", "multipart", "text"]


@dataclass
class Endpoint:
    method: str
    path: str
    name: str
    operation_id: str | None
    summary: str
    tags: tuple[str, ...]
    node: Mapping[str, Any] = field(repr=False)
    path_node: Mapping[str, Any] = field(repr=False)
    resolver: Resolver = field(repr=False)
    version: Version = "3.0"

    @cached_property
    def _built(self) -> tuple[dict[str, Any], list[Argument], Body | None]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        arguments: list[Argument] = []
        by_place: dict[tuple[str, str], Mapping[str, Any]] = {}
        for raw in [*self.path_node.get("parameters", []), *self.node.get("parameters", [])]:
            parameter = self.resolver.deref(raw)
            if isinstance(parameter, Mapping) and "name" in parameter and "in" in parameter:
                by_place[(str(parameter["in"]), str(parameter["name"]))] = parameter
        form: dict[str, Any] = {}
        form_required: list[str] = []
        body: Body | None = None
        body_schema: dict[str, Any] | None = None
        for (where, name), parameter in by_place.items():
            if where == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            if where == "body":  # Swagger 2.0
                body = Body("body", "application/json", "json")
                body_schema = self.resolver.schema(parameter.get("schema"))
                body_schema.setdefault("description", _text(parameter.get("description")))
                if parameter.get("required"):
                    required.append("body")
                continue
            found = self._parameter_schema(parameter)
            if where == "formData":  # Swagger 2.0
                form[name] = found
                if parameter.get("required"):
                    form_required.append(name)
                continue
            key = name if name not in properties and name != "body" else f"{name}_{where}"
            properties[key] = found
            if parameter.get("required") or where == "path":
                required.append(key)
            style, explode = _style(parameter, where)
            arguments.append(Argument(key, name, where, style, explode))  # type: ignore[arg-type]
        if form:
            consumes = self.node.get("consumes") or ["application/x-www-form-urlencoded"]
            multipart = any("multipart" in str(media) for media in consumes)
            body = Body(
                "body",
                "multipart/form-data" if multipart else "application/x-www-form-urlencoded",
                "multipart" if multipart else "form",
            )
            body_schema = {"type": "object", "properties": form, "required": form_required}
            if form_required:
                required.append("body")
        request = self.resolver.deref(self.node.get("requestBody"))
        if isinstance(request, Mapping) and isinstance(request.get("content"), Mapping):
            media, content = _pick_media(request["content"])
            if media is not None:
                body = Body("body", media, _kind(media))
                body_schema = self.resolver.schema(content.get("schema"))
                if description := _text(request.get("description")):
                    body_schema.setdefault("description", description)
                if request.get("required"):
                    required.append("body")
        if body is not None and body_schema is not None:
            if "body" in properties:
                body = Body("request_body", body.media_type, body.kind)
                required = ["request_body" if key == "body" else key for key in required]
            properties[body.key] = {k: v for k, v in body_schema.items() if v != ""}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = sorted(set(required))
        return schema, arguments, body

    @property
    def input_schema(self) -> dict[str, Any]:
        return self._built[0]

    @property
    def arguments(self) -> list[Argument]:
        return self._built[1]

    @property
    def body(self) -> Body | None:
        return self._built[2]

    @cached_property
    def response_schema(self) -> dict[str, Any] | None:
        """The schema of the first 2xx JSON answer, shallow: what an agent reads."""
        responses = self.node.get("responses")
        if not isinstance(responses, Mapping):
            return None
        for status in sorted(str(key) for key in responses):
            if not status.startswith("2"):
                continue
            answer = self.resolver.deref(responses.get(status) or responses.get(int(status)))
            if not isinstance(answer, Mapping):
                continue
            if self.version == "2.0":
                raw = answer.get("schema")
            else:
                content = answer.get("content")
                media, found = _pick_media(content) if isinstance(content, Mapping) else (None, {})
                raw = found.get("schema") if media is not None and _kind(media) == "json" else None
            if isinstance(raw, Mapping):
                return self.resolver.schema(raw, max_depth=4)
        return None

    def _parameter_schema(self, parameter: Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(parameter.get("schema"), Mapping):
            schema = self.resolver.schema(parameter["schema"])
        elif isinstance(parameter.get("content"), Mapping):
            _, content = _pick_media(parameter["content"])
            schema = self.resolver.schema(content.get("schema"))
        else:  # Swagger 2.0: the parameter is its own schema
            schema = self.resolver.schema(
                {
                    key: value
                    for key, value in parameter.items()
                    if key not in ("name", "in", "required", "description", "collectionFormat")
                    and not key.startswith("x-")
                }
            )
        if description := _text(parameter.get("description")):
            schema.setdefault("description", description)
        return schema


def _style(parameter: Mapping[str, Any], where: str) -> tuple[str, bool]:
    if (collection := parameter.get("collectionFormat")) is not None:  # Swagger 2.0
        return {"multi": ("form", True), "ssv": ("spaceDelimited", False)}.get(
            str(collection), ("pipeDelimited", False) if collection == "pipes" else ("form", False)
        )
    style = str(parameter.get("style") or ("form" if where in ("query", "cookie") else "simple"))
    explode = parameter.get("explode")
    return style, bool(explode) if explode is not None else style == "form"


def _pick_media(content: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """JSON first, then a form, then text; ``(None, {})`` when nothing fits."""
    medias = [str(media) for media in content]
    for wanted in (_is_json, _is_form, lambda m: m.startswith("multipart/"), _is_text):
        for media in medias:
            if wanted(media):
                found = content[media]
                return media, found if isinstance(found, Mapping) else {}
    return None, {}


def _is_json(media: str) -> bool:
    base = media.split(";")[0].strip().lower()
    return base == "application/json" or base.endswith("+json") or base == "*/*"


def _is_form(media: str) -> bool:
    return media.lower().startswith("application/x-www-form-urlencoded")


def _is_text(media: str) -> bool:
    return media.lower().startswith("text/")


def _kind(media: str) -> Literal["json", "form", "multipart", "text"]:
    if _is_json(media):
        return "json"
    if _is_form(media):
        return "form"
    return "multipart" if media.lower().startswith("multipart/") else "text"


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= _SUMMARY else text[: _SUMMARY - 1].rstrip() + "…"


def sanitised(raw: str) -> str:
    """An operation name from an operationId: ``actions/list-workflow-runs`` →
    ``actions_list_workflow_runs``, ``getBuild`` → ``get_build``."""
    name = _NOT_A_NAME.sub("_", _CAMEL.sub("_", raw).lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"op_{name}"
    return name[:64]


def endpoints(document: Mapping[str, Any], version: Version) -> list[Endpoint]:
    """Every operation in ``paths``, in document order, with unique names."""
    resolver = Resolver(document, version)
    found: list[Endpoint] = []
    taken: set[str] = set()
    for path, path_node, method, node in _operations(document):
        operation_id = node.get("operationId")
        base = sanitised(
            str(operation_id)
            if isinstance(operation_id, str) and operation_id
            else f"{method}{path}"
        )
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        tags = tuple(str(tag) for tag in node.get("tags") or () if isinstance(tag, str))
        found.append(
            Endpoint(
                method=method,
                path=path,
                name=name,
                operation_id=operation_id if isinstance(operation_id, str) else None,
                summary=_text(node.get("summary")) or _text(node.get("description")),
                tags=tags,
                node=node,
                path_node=path_node,
                resolver=resolver,
                version=version,
            )
        )
    return found


def _operations(
    document: Mapping[str, Any],
) -> Iterator[tuple[str, Mapping[str, Any], str, Mapping[str, Any]]]:
    paths = document.get("paths")
    if not isinstance(paths, Mapping):
        return
    for path, raw in paths.items():
        path_node = Resolver(document, "3.0").deref(raw)
        if not isinstance(path_node, Mapping):
            continue
        for method in METHODS:
            node = path_node.get(method)
            if isinstance(node, Mapping):
                yield str(path), path_node, method, node


def select(
    found: Sequence[Endpoint],
    *,
    tags: Sequence[str],
    operations: Sequence[str],
    methods: Sequence[str],
) -> list[Endpoint]:
    """The endpoints an instance offers: those of ``methods`` (with one of ``tags``, when
    given), plus those whose operationId or name matches one of the ``operations`` globs."""
    wanted_tags = {tag.lower() for tag in tags}
    wanted_methods = {method.lower() for method in methods}

    def listed(endpoint: Endpoint) -> bool:
        names = [endpoint.name, endpoint.operation_id or ""]
        return any(fnmatch.fnmatchcase(n, glob) for glob in operations for n in names if n)

    def by_method(endpoint: Endpoint) -> bool:
        tagged = not wanted_tags or any(tag.lower() in wanted_tags for tag in endpoint.tags)
        return tagged and endpoint.method in wanted_methods

    return [endpoint for endpoint in found if by_method(endpoint) or listed(endpoint)]
