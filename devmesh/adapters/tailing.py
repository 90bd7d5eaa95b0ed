"""The provider kit's tail read: the end of a download, in bounded memory.

Logs fail at the end, and many CI APIs (GitLab's job trace, Jenkins' console text)
serve a log only whole, without ``Range``. ``read_tail`` streams such a download and
keeps only its last ``limit`` bytes, so a 100 MB trace costs the time to read it,
never the memory; the caller learns whether the start was dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = ["Tail", "read_tail"]


@dataclass(frozen=True)
class Tail:
    """The last bytes of a download; ``clipped``: bytes before them were dropped."""

    data: bytes
    clipped: bool
    size: int


async def read_tail(response: httpx.Response, *, limit: int) -> Tail:
    """The last ``limit`` bytes of a streamed response (decoded as httpx decodes it)."""
    kept = bytearray()
    size = 0
    async for piece in response.aiter_bytes():
        size += len(piece)
        kept += piece
        if len(kept) > 2 * limit:
            # Trim in batches, not per piece: fewer copies, still bounded by 2 * limit.
            del kept[:-limit]
    clipped = len(kept) > limit
    if clipped:
        del kept[:-limit]
    return Tail(data=bytes(kept), clipped=clipped or size > len(kept), size=size)
