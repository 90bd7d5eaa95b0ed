"""An OpenAPI description, checked: its version, its shape, and its references.

The shape is checked against the published JSON Schemas of OpenAPI 3.0, 3.1 and
Swagger 2.0 (as ``openapi-spec-validator`` ships them) with ``jsonschema-rs``, which
takes GitHub's 13 MB description in tens of milliseconds where a pure-Python check
takes seconds. References are checked by a walk of the document: each must point
inside it (``#/...``) and resolve. A problem is an ``InvalidInput`` that says where,
as ``paths./builds/{id}.get.parameters[0]: …``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, Literal

import jsonschema_rs
from openapi_spec_validator.schemas import schema_v2, schema_v30, schema_v31

from devmesh.domain.errors import InvalidInput
from devmesh.domain.limits import shorten

__all__ = ["Version", "check", "location", "pointer", "version_of"]

Version = Literal["2.0", "3.0", "3.1"]
_MESSAGE = 300


def location(parts: Any) -> str:
    """``paths./builds/{id}.get.parameters[0]`` for the parts of a path into a document."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "spec"


def version_of(document: Mapping[str, Any], *, field: str) -> Version:
    if str(document.get("swagger", "")) == "2.0":
        return "2.0"
    given = document.get("openapi")
    if isinstance(given, str) and given.startswith("3.0"):
        return "3.0"
    if isinstance(given, str) and given.startswith("3.1"):
        return "3.1"
    raise InvalidInput(
        f"{field}: not an OpenAPI 3.0/3.1 or Swagger 2.0 description "
        "(no 'openapi: 3.x' or 'swagger: \"2.0\"' at its top)",
        field=field,
    )


@cache
def _validator(version: Version) -> Any:
    # The shipped schemas are lazy proxies; jsonschema-rs wants plain JSON.
    schema = {"2.0": schema_v2, "3.0": schema_v30, "3.1": schema_v31}[version]
    return jsonschema_rs.validator_for(json.loads(json.dumps(dict(schema), default=dict)))


def check(document: Any, *, field: str) -> Version:
    """The description's version, once it is known to be well formed; raises
    ``InvalidInput`` naming the first problem's place, prefixed by ``field``."""
    if not isinstance(document, Mapping):
        raise InvalidInput(f"{field}: must be a JSON object", field=field)
    version = version_of(document, field=field)
    for error in _validator(version).iter_errors(dict(document)):
        where = location(error.instance_path)
        raise InvalidInput(f"{field}: {where}: {shorten(error.message, _MESSAGE)}", field=field)
    for where, ref in _references(document, []):
        if not ref.startswith("#/"):
            raise InvalidInput(
                f"{field}: {where}: $ref {shorten(ref)!r} points outside the description; "
                "only references inside it (#/...) are followed: bundle it first",
                field=field,
            )
        if pointer(document, ref) is None:
            raise InvalidInput(
                f"{field}: {where}: $ref {shorten(ref)!r} does not resolve",
                field=field,
            )
    return version


def pointer(document: Mapping[str, Any], ref: str) -> Any:
    """What the local reference ``#/a/b`` points at, or ``None``."""
    found: Any = document
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(found, Mapping):
            found = found.get(part)
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            return None
        if found is None:
            return None
    return found


def _references(node: Any, path: list[str | int]) -> Iterator[tuple[str, str]]:
    # Iterative: a deep document must not hit the recursion limit.
    stack: list[tuple[Any, list[str | int]]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, Mapping):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield location(where), ref
            for key, value in current.items():
                if isinstance(value, Mapping | list):
                    stack.append((value, [*where, str(key)]))
        elif isinstance(current, list):
            for index, value in enumerate(current):
                if isinstance(value, Mapping | list):
                    stack.append((value, [*where, index]))
