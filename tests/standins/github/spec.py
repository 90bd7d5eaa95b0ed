"""GitHub's published OpenAPI description, cut down to what the stand-in serves, and a
checker that holds every request and answer to it.

The description is ``@octokit/openapi`` 23.0.2 (``generated/api.github.com.json``,
OpenAPI 3.0.3, 13 MB), installed from the npm registry by ``scripts/ensure-octokit``
into ``~/.cache/devmesh-test/octokit``. Parsing it whole takes seconds, so the
operations the stand-in serves (``OPERATIONS``) and the components they reference are
extracted once into ``github-subset.json`` beside it; the stand-in loads only that.

``Checker.request`` and ``Checker.response`` run ``openapi-core``'s validators: a
request the real API would reject (a missing ``ref``, a wrong parameter) or an answer
the real API would not give (a missing field) is a violation, which the stand-in
answers with 599 and records for the test to fail on.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

__all__ = [
    "EXAMPLES",
    "OPERATIONS",
    "Checker",
    "cache_dir",
    "examples",
    "full_description",
    "subset",
]

_REPO = Path(__file__).resolve().parents[3]
_VERSION = "23.0.2"
_FULL = "node_modules/@octokit/openapi/generated/api.github.com.json"
_WEBHOOKS = "node_modules/@octokit/webhooks-examples/api.github.com/index.json"
_HOST = "https://api.github.com"

_RUN = "/repos/{owner}/{repo}/actions/runs/{run_id}"
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("/", "get"),
    ("/rate_limit", "get"),
    ("/repos/{owner}/{repo}", "get"),
    ("/repos/{owner}/{repo}/actions/workflows", "get"),
    ("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", "post"),
    ("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", "get"),
    ("/repos/{owner}/{repo}/actions/runs", "get"),
    (_RUN, "get"),
    (_RUN + "/attempts/{attempt_number}", "get"),
    (_RUN + "/jobs", "get"),
    (_RUN + "/attempts/{attempt_number}/jobs", "get"),
    (_RUN + "/cancel", "post"),
    (_RUN + "/rerun", "post"),
    (_RUN + "/rerun-failed-jobs", "post"),
    (_RUN + "/artifacts", "get"),
    ("/repos/{owner}/{repo}/actions/jobs/{job_id}", "get"),
    ("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", "get"),
    ("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}", "get"),
    ("/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}", "get"),
    ("/app/installations/{installation_id}/access_tokens", "post"),
)
# Examples the stand-in shapes its answers from (filled in with its own state).
EXAMPLES = (
    "workflow-run", "job", "artifact", "installation-token", "full-repository", "workflow",
    "rate-limit-overview",
)  # fmt: skip


def cache_dir() -> Path:
    root = os.environ.get("DEVMESH_TEST_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "devmesh-test"
    )
    return Path(root) / "octokit"


def _ensure_installed() -> Path:
    where = cache_dir()
    if not (where / _FULL).is_file() or not (where / _WEBHOOKS).is_file():
        subprocess.run(["bash", str(_REPO / "scripts" / "ensure-octokit")], check=True, timeout=300)
    return where


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _nullable_enums(node: Any) -> None:
    """Let ``nullable`` enums take null, as GitHub's answers do (a running job's
    ``conclusion`` is null). OpenAPI 3.0.3 leaves open whether ``nullable`` widens an
    ``enum``; openapi-core reads it strictly, GitHub's description means it loosely."""
    if isinstance(node, dict):
        enum = node.get("enum")
        if node.get("nullable") is True and isinstance(enum, list) and None not in enum:
            node["enum"] = [*enum, None]
        for value in node.values():
            _nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_enums(value)


def _extract(full: Mapping[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method in OPERATIONS:
        paths.setdefault(path, {})[method] = full["paths"][path][method]
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    pending += [f"#/components/examples/{name}" for name in EXAMPLES]
    while pending:
        ref = pending.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in components.get(kind, {}):
            continue
        node = full["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        pending.extend(_refs(node))
    _nullable_enums(paths)
    _nullable_enums(components)
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": [{"url": _HOST}],
        "paths": paths,
        "components": components,
    }


def full_description() -> Path:
    """Where GitHub's whole description is (installed first, if it is not yet)."""
    return _ensure_installed() / _FULL


def subset() -> dict[str, Any]:
    """The served operations and what they reference; extracted once, then cached."""
    where = _ensure_installed()
    cached = where / f"github-subset-{_VERSION}-1.json"
    if cached.is_file():
        loaded: dict[str, Any] = json.loads(cached.read_text())
        return loaded
    full = json.loads((where / _FULL).read_text())
    cut = _extract(full)
    scratch = cached.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(cut))
    scratch.replace(cached)  # atomic: parallel test runs never read half a file
    return cut


def examples() -> list[dict[str, Any]]:
    """``@octokit/webhooks-examples``: per event, its example delivery payloads."""
    loaded: list[dict[str, Any]] = json.loads((_ensure_installed() / _WEBHOOKS).read_text())
    return loaded


class _Request:
    """A request as openapi-core reads it, always addressed to api.github.com."""

    def __init__(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str],
        body: bytes, content_type: str,
    ) -> None:  # fmt: skip
        self.host_url = _HOST
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = content_type or "application/octet-stream"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(dict(headers)), cookie={}
        )


class _Response:
    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status_code = status
        self.headers = Headers(dict(headers))
        self.data = data
        self.content_type = self.headers.get("content-type", "application/json")


class Checker:
    """Validates requests and answers against the subset; messages say what failed."""

    def __init__(self) -> None:
        self._spec = subset()
        self._api = OpenAPI.from_dict(self._spec)
        self.examples: dict[str, Any] = {
            name: self._spec["components"]["examples"][name]["value"] for name in EXAMPLES
        }

    def request(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str],
        body: bytes, content_type: str,
    ) -> str | None:  # fmt: skip
        wrapped = _Request(method, path, query, headers, body, content_type)
        try:
            self._api.validate_request(wrapped)
        except Exception as exc:  # the validator's errors share no useful base
            return f"request {method} {path}: {_explain(exc)}"
        return None

    def response(
        self, method: str, path: str, query: list[tuple[str, str]], headers: Mapping[str, str],
        body: bytes, content_type: str, status: int, answer_headers: Mapping[str, str],
        data: bytes,
    ) -> str | None:  # fmt: skip
        wrapped = _Request(method, path, query, headers, body, content_type)
        try:
            self._api.validate_response(wrapped, _Response(status, answer_headers, data))
        except Exception as exc:
            return f"answer {status} to {method} {path}: {_explain(exc)}"
        return None

    def declares(self, template: str, method: str, status: int) -> bool:
        responses = self._spec["paths"][template][method]["responses"]
        return str(status) in responses or "default" in responses


def _explain(exc: BaseException) -> str:
    """The validator's findings, each with where it is; not the whole value."""
    found: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        for inner in getattr(seen, "schema_errors", None) or []:
            where = "/".join(str(part) for part in getattr(inner, "absolute_path", []))
            found.append(f"at /{where}: {getattr(inner, 'message', inner)}"[:300])
        seen = seen.__cause__
    head = f"{type(exc).__name__}: {str(exc)[:200]}"
    return "; ".join([head, *found])[:3000]
