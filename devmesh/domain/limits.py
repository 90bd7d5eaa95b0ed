"""Input limits: the most any caller may store, forward or make us describe, in one place.

Every string a caller hands us is either stored (tool config, credentials, key names)
or forwarded upstream (operation arguments, ``X-Upstream-Token``); unbounded, one
request could fill the database, or make every later listing of it huge. The numbers
are generous for real use (a JWT is a few KB, a Buildbot config a few hundred bytes)
and small next to the request body cap.

``json_problem`` walks a JSON value once and names the first limit it breaks, so the
config validator and the operation-argument check share one rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devmesh.domain.errors import InvalidInput

__all__ = [
    "MAX_ARGUMENTS_BYTES",
    "MAX_ARGUMENT_STRING",
    "MAX_CONFIG_BYTES",
    "MAX_CREDENTIAL_FIELD",
    "MAX_DEPTH",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_KEY_NAME",
    "MAX_PROVIDER_NAME",
    "MAX_SHOWN_NAME",
    "MAX_UPSTREAM_TOKEN",
    "MAX_VALIDATION_ERRORS",
    "check_call",
    "json_problem",
    "shorten",
]

MAX_CONFIG_BYTES = 16 * 1024
"""A tool's ``config``, serialized as JSON."""
MAX_ARGUMENTS_BYTES = 64 * 1024
"""One operation call's arguments, serialized as JSON."""
MAX_ARGUMENT_STRING = 8 * 1024
"""Any one string among an operation's arguments (a project, a branch, a parameter value)."""
MAX_DEPTH = 8
"""Nesting of objects and arrays in a config or in arguments."""
MAX_KEY_NAME = 128
"""An object key in a config or in arguments, and the label of an API key."""
MAX_CREDENTIAL_FIELD = 8 * 1024
"""Each stored credential field: token, username, password, api_key."""
MAX_UPSTREAM_TOKEN = 8 * 1024
"""The caller's own upstream token (``X-Upstream-Token``, or the MCP stdio option)."""
MAX_IDEMPOTENCY_KEY = 255
"""An idempotency key, as stored."""
MAX_PROVIDER_NAME = 64
"""A provider name as a caller spells it."""
MAX_VALIDATION_ERRORS = 5
"""Validation errors listed in one answer; the count of the rest is given instead."""
MAX_SHOWN_NAME = 64
"""Characters of a caller-chosen field name echoed back in an error message."""


def shorten(text: str, limit: int = MAX_SHOWN_NAME) -> str:
    """``text`` cut to ``limit`` characters, marked when cut: echoing input back must
    not let a caller grow our answers."""
    return text if len(text) <= limit else text[:limit] + "…"


def json_problem(
    value: Any,
    *,
    max_bytes: int,
    max_string: int | None = None,
    max_depth: int = MAX_DEPTH,
    max_key: int = MAX_KEY_NAME,
) -> str | None:
    """What is too big in the JSON ``value``, or ``None`` when it is within the limits.

    The size is checked first, on the compact serialization, so a huge value is
    refused before it is walked.
    """
    try:
        size = len(json.dumps(value, separators=(",", ":"), default=str).encode())
    except (ValueError, RecursionError):
        return f"is nested deeper than {max_depth} levels"
    if size > max_bytes:
        return f"is {size} bytes as JSON; at most {max_bytes} are allowed"
    return _walk(
        value, path="", depth=0, max_string=max_string, max_depth=max_depth, max_key=max_key
    )


def _walk(
    value: Any, *, path: str, depth: int, max_string: int | None, max_depth: int, max_key: int
) -> str | None:
    where = f" at {path}" if path else ""
    if isinstance(value, str):
        if max_string is not None and len(value) > max_string:
            return f"has a string of {len(value)} characters{where}; at most {max_string}"
        return None
    if isinstance(value, Mapping | list | tuple):
        if depth >= max_depth:
            return f"is nested deeper than {max_depth} levels{where}"
        items = (
            value.items()
            if isinstance(value, Mapping)
            else ((str(i), v) for i, v in enumerate(value))
        )
        for key, item in items:
            key = str(key)
            if isinstance(value, Mapping) and len(key) > max_key:
                return f"has a key of {len(key)} characters{where}; at most {max_key}"
            problem = _walk(
                item,
                path=f"{path}.{shorten(key)}" if path else shorten(key),
                depth=depth + 1,
                max_string=max_string,
                max_depth=max_depth,
                max_key=max_key,
            )
            if problem:
                return problem
    return None


def check_call(arguments: Mapping[str, Any], *, upstream_token: str | None) -> None:
    """Refuse an operation call whose arguments or upstream token are too big, before
    anything is looked up, validated or forwarded. Both faces call through here."""
    if upstream_token is not None and len(upstream_token) > MAX_UPSTREAM_TOKEN:
        raise InvalidInput(
            f"the upstream token is {len(upstream_token)} characters; at most "
            f"{MAX_UPSTREAM_TOKEN} are allowed",
            field="X-Upstream-Token",
        )
    problem = json_problem(
        dict(arguments), max_bytes=MAX_ARGUMENTS_BYTES, max_string=MAX_ARGUMENT_STRING
    )
    if problem:
        raise InvalidInput(f"the arguments {problem}", field="arguments")
