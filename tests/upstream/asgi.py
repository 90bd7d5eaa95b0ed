"""Raw ASGI helpers the fault layer and the proxy share: a bounded body read, a JSON answer."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Send

__all__ = ["MAX_BODY_BYTES", "read_body", "send_json"]

MAX_BODY_BYTES = 10 * 1024 * 1024


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ValueError("request body too large for the test upstream")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
