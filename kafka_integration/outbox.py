"""Declaring events inside a write's transaction (the seed's `Eventeable` concern, made durable).

    async with unit_of_work(pool) as uow:
        row = await uow.conn.fetchrow("INSERT ... RETURNING *")
        uow.emit(entity_event("organizations", "organization", "created", dict(row)))

The events go to the `kafka_outbox` table in the same transaction, after the rows they describe
(so a later write of the same row, which waits for this one's row lock, always gets a larger
outbox id: the relay's id order is per-key order). A rolled-back write leaves no event. After
commit the outbox ids are added to the current request's pending list, if any, so the
DeliverMessages middleware can wait for them.

An event over the size limit (`KafkaSettings.max_event_bytes`, 900 KiB by default; Kafka refuses
requests over 1 MiB) is refused when it is emitted: `EventTooLarge` is raised inside the
transaction, which rolls back, so nothing is written and the outbox never holds an event that
could not be published. The limit is the `max_event_bytes` given to `unit_of_work`, else the one
the current request's DeliverMessages middleware set, else the default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import asyncpg
import orjson

from kafka_integration.config import DEFAULT_MAX_EVENT_BYTES
from kafka_integration.errors import EventTooLarge
from kafka_integration.events import Event

_pending: ContextVar[list[int] | None] = ContextVar("kafka_integration_pending", default=None)
_max_event_bytes: ContextVar[int] = ContextVar(
    "kafka_integration_max_event_bytes", default=DEFAULT_MAX_EVENT_BYTES
)


def wake_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that tells the relay of new outbox rows in `schema`
    (write_outbox builds the same name in SQL from current_schema())."""
    return f"kafka_outbox_{schema}"


def done_channel(schema: str) -> str:
    """The channel on which the relay announces the outbox ids it has published."""
    return f"kafka_outbox_done_{schema}"


async def write_outbox(conn: asyncpg.Connection, events: Sequence[Event]) -> list[int]:
    """Insert events into the outbox on `conn` (inside the caller's transaction); their ids."""
    if not events:
        return []
    rows = await conn.fetch(
        """
        WITH ins AS (
            INSERT INTO kafka_outbox (topic, key, value, headers)
            SELECT t.topic, t.key, t.value, t.headers::jsonb
            FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[])
                 WITH ORDINALITY AS t(topic, key, value, headers, n)
            ORDER BY t.n
            RETURNING id
        )
        SELECT ins.id FROM ins, (SELECT pg_notify('kafka_outbox_' || current_schema(), '')) AS wake
        ORDER BY ins.id
        """,
        [e.topic for e in events],
        [e.key for e in events],
        [e.encoded for e in events],
        [orjson.dumps(e.metadata()).decode() for e in events],
    )
    return [r["id"] for r in rows]


@dataclass
class UnitOfWork:
    """One transaction and the events its writes declare."""

    conn: asyncpg.Connection
    events: list[Event] = field(default_factory=list)
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES

    def emit(self, *events: Event) -> None:
        """Declare events; EventTooLarge (the transaction rolls back) if one is over the limit."""
        for event in events:
            check_size(event, self.max_event_bytes)
        self.events.extend(events)


def check_size(event: Event, limit: int) -> None:
    """EventTooLarge if the event is over `limit` bytes as the producer counts them."""
    size = event.size()
    if size > limit:
        raise EventTooLarge(event.topic, event.key, size, limit)


def current_max_event_bytes() -> int:
    """The size limit of the current request's events (its DeliverMessages), else the default."""
    return _max_event_bytes.get()


def committed(ids: Sequence[int]) -> None:
    """Add committed outbox ids to the current request's pending list, if any."""
    pending = _pending.get()
    if pending is not None:
        pending.extend(ids)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, max_event_bytes: int | None = None) -> AsyncIterator[UnitOfWork]:
    """A transaction whose declared events are written to the outbox before it commits."""
    limit = max_event_bytes if max_event_bytes is not None else _max_event_bytes.get()
    async with pool.acquire() as conn:
        async with conn.transaction():
            uow = UnitOfWork(conn, max_event_bytes=limit)
            yield uow
            ids = await write_outbox(conn, uow.events)
        committed(ids)


class collect_pending:  # lower case: used as the function it was (`async with collect_pending() as ids`)
    """Collect the outbox ids of the writes committed inside this block (one request); its
    units of work refuse events over `max_event_bytes` (when given). A class rather than an
    @asynccontextmanager: it runs around every request, and a generator costs more."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._max_event_bytes = max_event_bytes

    async def __aenter__(self) -> list[int]:
        pending: list[int] = []
        self._token = _pending.set(pending)
        limit = self._max_event_bytes
        self._limit = _max_event_bytes.set(limit) if limit is not None else None
        return pending

    async def __aexit__(self, *exc_info: object) -> None:
        if self._limit is not None:
            _max_event_bytes.reset(self._limit)
        _pending.reset(self._token)
