"""A JSON response for a body that is JSON-safe already."""

from __future__ import annotations

import json
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response

__all__ = ["JsonBody"]


class JsonBody(Response):
    """``application/json`` from a value that needs no conversion (a pydantic
    ``model_dump(mode="json")``), encoded as FastAPI's ``JSONResponse`` encodes it.

    Returning a ``Response`` from a route skips FastAPI's response validation and
    ``jsonable_encoder``, which walk the whole value again; the route's
    ``response_model`` still documents the body."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, self.media_type, background)

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")
