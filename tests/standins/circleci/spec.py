"""Every API v2 request and answer of the stand-in, checked against CircleCI's own
OpenAPI description (``openapi-v2.json``, see ``README.md`` for where it comes from).

openapi-core does the checking. One reading of the description is needed: CircleCI
marks a nullable field with Swagger 2's ``x-nullable: true`` (``stopped_at`` of a
running workflow, ``next_page_token`` of a last page) although the document is
OpenAPI 3.0, whose word is ``nullable: true``; the loader reads the one as the other,
as CircleCI's own answers (``null`` there) require. Nothing else is changed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

__all__ = ["HOST", "violation_of_request", "violation_of_response"]

SPEC = Path(__file__).with_name("openapi-v2.json")
HOST = "https://circleci.com"


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("x-nullable") is True:
            node["nullable"] = True
        for value in node.values():
            _nullable(value)
    elif isinstance(node, list):
        for value in node:
            _nullable(value)
    return node


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(_nullable(json.loads(SPEC.read_text())))


def _request(method: str, raw_path: str, query: dict[str, str], body: bytes | None) -> MockRequest:
    return MockRequest(
        HOST,
        method.lower(),
        raw_path,
        args=query,
        data=body or None,
        headers={"Circle-Token": "checked-elsewhere"},
    )


def violation_of_request(
    method: str, raw_path: str, query: dict[str, str], body: bytes | None
) -> str | None:
    """What is wrong with a request by the description (``None``: nothing)."""
    try:
        _openapi().validate_request(_request(method, raw_path, query, body))
    except Exception as exc:  # openapi-core raises a family of errors; all are failures
        return f"{method} {raw_path}: {type(exc).__name__}: {exc} {_causes(exc)}"
    return None


def violation_of_response(
    method: str, raw_path: str, query: dict[str, str], body: bytes | None, status: int, data: bytes
) -> str | None:
    """What is wrong with an answer by the description (``None``: nothing)."""
    try:
        _openapi().validate_response(
            _request(method, raw_path, query, body), MockResponse(data, status_code=status)
        )
    except Exception as exc:
        return f"answer {status} to {method} {raw_path}: {type(exc).__name__}: {exc} {_causes(exc)}"
    return None


def _causes(exc: BaseException) -> str:
    found: list[str] = []
    seen = exc.__cause__
    for _ in range(5):
        if seen is None:
            break
        found.append(str(seen)[:500])
        for nested in getattr(seen, "schema_errors", ()) or ():
            found.append(str(getattr(nested, "message", nested))[:300])
        seen = seen.__cause__
    return " | ".join(found)
