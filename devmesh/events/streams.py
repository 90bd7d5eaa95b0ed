"""``RedisEventBus``: deliveries on a Redis Stream, shared by a consumer group.

Chosen over faststream, taskiq, saq and procrastinate (see docs/events.md): the
stream commands are the whole broker, redis-py (already a dependency) speaks them,
and none of those libraries keeps the transactional outbox or a per-handler DLQ.

* ``dispatch`` relays committed outbox rows: ``XADD`` one entry per (event,
  handler), then marks the rows dispatched. A crash in between adds them again on
  the next relay; the handlers' idempotency makes that harmless.
* ``claim``: due retries move back onto the stream (a Lua script, so two workers
  cannot both move one), then ``XAUTOCLAIM`` takes entries another consumer has
  held longer than the claim idle time (it died), then ``XREADGROUP`` reads new ones.
* ``ack`` is ``XACK`` + ``XDEL``: the stream holds only unsettled deliveries.
* ``retry`` parks the delivery in a sorted set scored by when it is due; after
  the last attempt ``dead_letter`` adds it to the dead-letter stream instead.
  Either happens in one ``MULTI`` with the ``XACK``.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select

from devmesh.domain.errors import NotFound
from devmesh.domain.events import Event
from devmesh.events.bus import DeadLetter, Delivery, QueueStats, Router, event_of
from devmesh.store.db import Database
from devmesh.store.rows import EventRow, utcnow

__all__ = ["RedisEventBus"]

_GROUP = "devmesh-workers"
_MAX_ERROR = 2000
_DEAD_SCAN = 10_000
# Moves due retries back onto the stream; ZREM decides which worker moves each one.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local m = cjson.decode(member)
    redis.call('XADD', KEYS[2], '*', 'event', m.event, 'handler', m.handler,
               'attempt', tostring(m.attempt))
  end
end
return #due
"""


class RedisEventBus:
    def __init__(
        self,
        db: Database,
        redis: Redis,
        *,
        router: Router,
        claim_idle: float,
        stream: str = "devmesh:events",
        block: float = 0.5,
    ) -> None:
        self._db = db
        self._redis = redis
        self._router = router
        self._idle_ms = max(1, int(claim_idle * 1000))
        self._block_ms = max(1, int(block * 1000))
        self._stream = stream
        self._dead = f"{stream}:dead"
        self._retries = f"{stream}:retry"
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._autoclaim_from = "0-0"
        self._move_due = redis.register_script(_MOVE_DUE)

    async def start(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def close(self) -> None:
        # Leave the group membership: a consumer with nothing pending is just a name.
        try:
            pending = await self._redis.xpending_range(
                self._stream, _GROUP, min="-", max="+", count=1, consumername=self.consumer
            )
            if not pending:
                await self._redis.xgroup_delconsumer(self._stream, _GROUP, self.consumer)
        except (ResponseError, OSError):
            pass

    async def dispatch(self, *, limit: int) -> int:
        now = utcnow()
        async with self._db.session() as session:
            seqs = (
                select(EventRow.seq)
                .where(EventRow.dispatched_at.is_(None))
                .order_by(EventRow.seq)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = sorted(
                (
                    await session.scalars(
                        select(EventRow).where(EventRow.seq.in_(seqs.scalar_subquery()))
                    )
                ).all(),
                key=lambda r: r.seq,
            )
            if not rows:
                return 0
            pipe = self._redis.pipeline(transaction=False)
            for row in rows:
                event = event_of(row)
                for handler in self._router(event):
                    pipe.xadd(self._stream, _fields(event.model_dump_json(), handler, 1))
                row.dispatched_at = now
            # The rows stay locked until the entries are in: no other relay takes them.
            await pipe.execute()
            return len(rows)

    async def claim(self, *, limit: int) -> list[Delivery]:
        await self._move_due(keys=[self._retries, self._stream], args=[time.time(), limit])
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        result: Any = await self._redis.xautoclaim(
            self._stream,
            _GROUP,
            self.consumer,
            min_idle_time=self._idle_ms,
            start_id=self._autoclaim_from,
            count=limit,
        )
        next_from, claimed = result[0], result[1]
        self._autoclaim_from = next_from.decode() if isinstance(next_from, bytes) else next_from
        entries += [(entry_id, fields) for entry_id, fields in claimed if fields]
        if len(entries) < limit:
            read: Any = await self._redis.xreadgroup(
                _GROUP,
                self.consumer,
                {self._stream: ">"},
                count=limit - len(entries),
                block=None if entries else self._block_ms,
            )
            for _stream, stream_entries in read or []:
                entries += stream_entries
        return [_delivery(entry_id, fields) for entry_id, fields in entries]

    async def ack(self, delivery: Delivery) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.xack(self._stream, _GROUP, delivery.id)
        pipe.xdel(self._stream, delivery.id)
        await pipe.execute()

    async def retry(self, delivery: Delivery, *, error: str, delay: float) -> None:
        member = json.dumps(
            {
                "event": delivery.event.model_dump_json(),
                "handler": delivery.handler,
                "attempt": delivery.attempt + 1,
                "nonce": uuid.uuid4().hex,
            }
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._retries, {member: time.time() + delay})
        pipe.xack(self._stream, _GROUP, delivery.id)
        pipe.xdel(self._stream, delivery.id)
        await pipe.execute()

    async def dead_letter(self, delivery: Delivery, *, error: str) -> None:
        event = delivery.event
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(
            self._dead,
            {
                **_fields(event.model_dump_json(), delivery.handler, delivery.attempt),
                "tenant_id": event.tenant_id,
                "error": error[:_MAX_ERROR],
                "dead_at": utcnow().isoformat(),
            },
        )
        pipe.xack(self._stream, _GROUP, delivery.id)
        pipe.xdel(self._stream, delivery.id)
        await pipe.execute()

    async def dead_letters(self, *, tenant_id: str | None, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        entries: Any = await self._redis.xrevrange(self._dead, count=_DEAD_SCAN)
        for entry_id, fields in entries:
            letter = _dead_letter(entry_id, fields)
            if tenant_id is None or letter.tenant_id == tenant_id:
                letters.append(letter)
                if len(letters) >= limit:
                    break
        return letters

    async def replay(self, dead_letter_id: str, *, tenant_id: str | None) -> DeadLetter:
        try:
            entries: Any = await self._redis.xrange(
                self._dead, min=dead_letter_id, max=dead_letter_id, count=1
            )
        except ResponseError:
            entries = []  # not an entry id at all
        if not entries:
            raise NotFound(f"no dead letter {dead_letter_id!r}")
        entry_id, fields = entries[0]
        letter = _dead_letter(entry_id, fields)
        if tenant_id is not None and letter.tenant_id != tenant_id:
            raise NotFound(f"no dead letter {dead_letter_id!r}")
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(self._stream, _fields(fields[b"event"].decode(), letter.handler, 1))
        pipe.xdel(self._dead, entry_id)
        await pipe.execute()
        return letter

    async def stats(self) -> QueueStats:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(self._stream)
        pipe.zcard(self._retries)
        pipe.xlen(self._dead)
        pipe.xrange(self._stream, count=1)
        streamed, retrying, dead, first = await pipe.execute()
        age = 0.0
        if first:
            # An entry id starts with the millisecond it was added.
            added_ms = int(first[0][0].decode().split("-", 1)[0])
            age = max(time.time() - added_ms / 1000, 0.0)
        async with self._db.session() as session:
            waiting, undispatched = (
                await session.execute(
                    select(func.count(), func.min(EventRow.created_at)).where(
                        EventRow.dispatched_at.is_(None)
                    )
                )
            ).one()
        if undispatched is not None:
            age = max(age, (utcnow() - undispatched).total_seconds())
        return QueueStats(depth=streamed + retrying + waiting, oldest_age=age, dead=dead)


def _fields(event_json: str, handler: str, attempt: int) -> dict[Any, Any]:
    return {"event": event_json, "handler": handler, "attempt": str(attempt)}


def _delivery(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Delivery:
    return Delivery(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        event=Event.model_validate_json(fields[b"event"]),
        handler=fields[b"handler"].decode(),
        attempt=int(fields[b"attempt"]),
    )


def _dead_letter(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    event = cast(dict[str, Any], json.loads(fields[b"event"]))
    return DeadLetter(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        event_id=str(event["id"]),
        tenant_id=fields[b"tenant_id"].decode(),
        event_type=str(event["type"]),
        handler=fields[b"handler"].decode(),
        attempts=int(fields[b"attempt"]),
        error=fields[b"error"].decode(),
        dead_at=datetime.fromisoformat(fields[b"dead_at"].decode()).astimezone(UTC),
    )
