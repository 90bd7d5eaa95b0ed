"""Bounded reads of build artifacts, the same for every provider.

An agent asks for a window of bytes (``offset``, ``max_bytes``) and gets text when
the bytes are UTF-8 text, base64 otherwise, always with where to go on: like
``adapters.logs``, nothing here hands an agent a whole file it did not page through.
Bytes count as text when they decode as UTF-8 and hold no control characters but
those text uses (tabs, newlines, ANSI colour escapes): valid UTF-8 full of NULs is
still a binary file, and base64 serves it better.
"""

from __future__ import annotations

import base64
import re
from typing import Literal

from devmesh.domain.models import ArtifactChunk, ArtifactContent

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES", "content"]

DEFAULT_MAX_BYTES = 64 * 1024
MAX_BYTES = 1024 * 1024
# The longest UTF-8 sequence: a window may end inside one character, never deeper.
_UTF8_MAX_SEQUENCE = 4
_BINARY_CONTROL = re.compile(r"[\x00-\x07\x0e-\x1a\x1c-\x1f\x7f]")


def _utf8(data: bytes, *, more: bool) -> tuple[str, int] | None:
    """``(text, bytes used)`` if ``data`` is UTF-8, allowing a character cut at the end."""
    try:
        return data.decode("utf-8"), len(data)
    except UnicodeDecodeError as exc:
        cut_at_end = exc.reason == "unexpected end of data" and exc.end == len(data)
        if not (more and cut_at_end and 0 < len(data) - exc.start < _UTF8_MAX_SEQUENCE):
            return None
        # The character goes on in the next window; end this one before it.
        head = data[: exc.start]
        try:
            return (head.decode("utf-8"), len(head)) if head else None
        except UnicodeDecodeError:
            return None


def _text(data: bytes, *, more: bool) -> tuple[str, int] | None:
    decoded = _utf8(data, more=more)
    if decoded is None or _BINARY_CONTROL.search(decoded[0]):
        return None
    return decoded


def content(build_id: str, artifact_id: str, chunk: ArtifactChunk) -> ArtifactContent:
    """What ``download_artifact`` answers for the bytes an adapter read."""
    decoded = _text(chunk.data, more=chunk.more)
    encoding: Literal["utf-8", "base64"]
    if decoded is not None:
        text, used = decoded
        encoding = "utf-8"
    else:
        text, used = base64.b64encode(chunk.data).decode("ascii"), len(chunk.data)
        encoding = "base64"
    end = chunk.offset + used
    truncated = chunk.more or used < len(chunk.data)
    of_size = f" of {chunk.size}" if chunk.size is not None else ""
    hint: str | None = None
    if truncated:
        hint = (
            f"bytes {chunk.offset}-{end - 1}{of_size}; call download_artifact with "
            f"offset={end} for the next part"
        )
    elif used == 0 and chunk.offset > 0:
        hint = f"offset {chunk.offset} is at or past the end{of_size}; nothing is left to read"
    return ArtifactContent(
        build_id=build_id,
        artifact_id=artifact_id,
        offset=chunk.offset,
        length=used,
        encoding=encoding,
        content=text,
        content_type=chunk.content_type,
        size=chunk.size,
        truncated=truncated,
        next_offset=end if truncated else None,
        hint=hint,
    )
