"""The handler interface, and the registry that finds handlers.

A handler is an object with a ``name``, the event ``types`` it wants (empty: all),
an optional ``retry_policy`` and ``async handle(context)``. The worker calls it
inside a database transaction that also records ``(handler, event id)`` as
handled; effects written through ``context.session`` therefore happen exactly
once, however often the event is delivered. Effects outside the database (an
HTTP call, a triggered build) must be keyed by ``context.event.id`` themselves,
e.g. as the ``Idempotency-Key`` or the Standard Webhooks ``webhook-id``.

A handler whose work is slow (calls to a tool, CPU-heavy analysis) also has
``async prepare(event)`` (a ``PreparingHandler``): the worker runs it before the
transaction, unless the event is marked handled already, and passes what it
returns as ``context.prepared``. The transaction, and with it the database's
write lock on SQLite, then lasts only as long as ``handle`` writes. ``prepare``
may run more than once for one event (a crash, a race between workers), so what
it does must be safe to repeat.

Handlers register like providers: an entry point in the ``devmesh.handlers``
group whose object is a ``Handler``. Loading fails at start-up, naming the entry
point, when one will not import or does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from devmesh.config import RetryPolicySettings
from devmesh.domain.events import Event

__all__ = [
    "HANDLER_ENTRY_POINT_GROUP",
    "Handler",
    "HandlerContext",
    "HandlerLoadError",
    "HandlerRegistry",
    "PreparingHandler",
    "backoff_delay",
]

HANDLER_ENTRY_POINT_GROUP = "devmesh.handlers"
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class HandlerLoadError(RuntimeError):
    """A handler entry point is broken; the message names ``group:name``."""


@dataclass(frozen=True)
class HandlerContext:
    """What one delivery gives a handler: the event, and the transaction to write in.

    ``attempt`` is 1 on the first try; ``session`` commits with the handled mark, or
    rolls back with it if ``handle`` raises."""

    event: Event
    session: AsyncSession
    attempt: int
    prepared: object = None


@runtime_checkable
class Handler(Protocol):
    name: str
    types: frozenset[str]
    retry_policy: RetryPolicySettings | None

    async def handle(self, context: HandlerContext) -> None: ...


@runtime_checkable
class PreparingHandler(Handler, Protocol):
    async def prepare(self, event: Event) -> object: ...


def backoff_delay(policy: RetryPolicySettings, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure (1-based)."""
    if policy.backoff == "constant":
        return min(policy.initial_delay, policy.max_delay)
    return float(min(policy.initial_delay * 2 ** (failures - 1), policy.max_delay))


class HandlerRegistry:
    def __init__(self, handlers: Iterable[Handler] = ()) -> None:
        self._handlers: dict[str, Handler] = {}
        for handler in handlers:
            self.add(handler)

    def add(self, handler: Handler) -> None:
        if handler.name in self._handlers:
            raise HandlerLoadError(f"handler {handler.name!r} is registered twice")
        self._handlers[handler.name] = handler

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def for_event(self, event_type: str) -> list[Handler]:
        return [h for h in self if not h.types or event_type in h.types]

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._handlers)

    @classmethod
    def from_entry_points(cls, *, group: str = HANDLER_ENTRY_POINT_GROUP) -> HandlerRegistry:
        return cls(_load(ep, group) for ep in entry_points(group=group))


def _load(entry_point: EntryPoint, group: str) -> Handler:
    where = f"{group}:{entry_point.name}"
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise HandlerLoadError(f"{where} ({entry_point.value}) failed to load: {exc!r}") from exc
    if not isinstance(loaded, Handler):
        raise HandlerLoadError(
            f"{where} ({entry_point.value}) is a {type(loaded).__name__}, not a "
            "devmesh.events.handlers.Handler (name, types, retry_policy, async handle)"
        )
    if loaded.name != entry_point.name or not _NAME.match(loaded.name):
        raise HandlerLoadError(
            f"{where}: the handler calls itself {loaded.name!r}; the entry point name and "
            "the handler name must match and be lowercase letters, digits, '_', '.' or '-'"
        )
    return loaded
