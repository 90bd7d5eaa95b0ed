"""The provider kit's pagination: walk an upstream's pages, bounded, whatever its scheme.

``collect`` drives any scheme through one callable, ``fetch(token) -> Page``: the
token is ``None`` for the first page and then whatever the previous ``Page.next``
said. The helpers read the three common schemes' next tokens from an answer:

* ``next_link``: RFC 8288 ``Link: <…>; rel="next"`` (GitHub, GitLab keyset pages);
* ``next_page_number``: ``page``/``per_page`` numbering (GitLab's ``X-Next-Page``, or
  "a full page means there may be more");
* a cursor is the provider's own field (CircleCI's ``next_page_token``), passed as is.

Every walk stops at ``limit`` items and at ``max_pages`` pages, so a huge project or
an upstream that always says "next" cannot keep a call going.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

__all__ = ["MAX_PAGES", "Page", "collect", "next_link", "next_page_number"]

T = TypeVar("T")
N = TypeVar("N")

MAX_PAGES = 20
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL = re.compile(r"""rel\s*=\s*"?([^";]+)"?""")


@dataclass(frozen=True)
class Page(Generic[T, N]):
    """One page's items, and the token for the next page (``None``: this was the last)."""

    items: Sequence[T]
    next: N | None = None


async def collect(
    fetch: Callable[[N | None], Awaitable[Page[T, N]]],
    *,
    limit: int,
    max_pages: int = MAX_PAGES,
) -> list[T]:
    """Items from successive pages until ``limit`` items, the last page or ``max_pages``."""
    items: list[T] = []
    token: N | None = None
    for _ in range(max_pages):
        page = await fetch(token)
        items.extend(page.items[: limit - len(items)])
        if len(items) >= limit or page.next is None or not page.items:
            break
        token = page.next
    return items


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, made absolute, or ``None``."""
    for value in response.headers.get_list("link"):
        for target, params in _LINK.findall(value):
            rels = {
                rel for match in _REL.finditer(params) for rel in match.group(1).lower().split()
            }
            if "next" in rels:
                return str(response.request.url.join(target))
    return None


def next_page_number(
    response: httpx.Response, *, page: int, per_page: int, count: int
) -> int | None:
    """The next page number in ``page``/``per_page`` numbering, or ``None`` after the last.

    ``X-Next-Page`` decides when sent (empty: the last page); otherwise a full page
    (``count == per_page``) may have more behind it.
    """
    if "x-next-page" in response.headers:
        value = response.headers["x-next-page"].strip()
        return int(value) if value.isdigit() else None
    return page + 1 if count >= per_page > 0 else None
