"""The outbox relay: publishes committed events to Kafka, in outbox-id order, then deletes them.

One relay per schema publishes at a time: it holds a PostgreSQL session advisory lock on its
listening connection, so two instances of a service never interleave (per-key order holds); if
the holder dies its connection closes, the lock is freed and another instance takes over.
New rows wake the leader by NOTIFY; published ids are announced by NOTIFY so any instance can
tell its waiting requests. The producer is idempotent (acks=all).

Errors are of two kinds:
- retriable (broker down, timeouts, leader changes, unknown topic, anything not listed below):
  the event and every one after it stay in the outbox and are sent again, in order, with a fresh
  producer after a backoff; an outage only delays events.
- permanent (the record can never be accepted as it is: `MessageSizeTooLargeError`,
  `RecordListTooLargeError`, `InvalidTopicError`, `CorruptRecordException`, an invalid topic
  name, a value or headers that cannot be encoded): the event is moved to `kafka_outbox_dead`
  with the error, in one transaction with its delete from the outbox, counted
  (`on_dead_lettered`) and logged at ERROR; the relay goes on with the next event. One bad event
  never blocks the others (every organization's events share the outbox).

What that means for per-key order: the events of a key after a dead-lettered one are published
without it; consumers see the key jump from the event before to the one after. Values are full
rows, so the key's latest state stays right. A dead letter re-published later (see
deadletters.py) is sent after them, and becomes the key's latest state.

An authorization refusal (a topic this principal may not write) is retriable in this sense: only
an ACL fixes it, and then every event goes out in order; it is logged as an error and counted
(`refused`, `on_refused`) so a missing ACL is never a silent stall.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

from kafka_integration.access import refusal, who
from kafka_integration.config import KafkaSettings
from kafka_integration.deadletters import bury
from kafka_integration.errors import NotStarted
from kafka_integration.events import kafka_headers
from kafka_integration.outbox import done_channel, wake_channel
from kafka_integration.producer import new_producer
from kafka_integration.topics import is_topic_name

log = logging.getLogger(__name__)

_NOTIFY_IDS_PER_MESSAGE = 500  # NOTIFY payloads must stay under 8000 bytes
_RECENT_IDS = 100_000  # published ids remembered for requests that register late
# Kafka errors that sending the same record again can never fix.
_PERMANENT_KAFKA_ERRORS = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
)
# Raised while turning a row into a record (headers not a mapping of strings, ...).
_ENCODING_ERRORS = (TypeError, ValueError, AttributeError, KeyError)

Outcome = BaseException | None  # None: Kafka acknowledged the record


def is_permanent(error: BaseException) -> bool:
    """Whether an error of sending one record would come back however often it is retried."""
    if isinstance(error, KafkaError):
        return isinstance(error, _PERMANENT_KAFKA_ERRORS)
    return isinstance(error, _ENCODING_ERRORS)


def _notify_payloads(ids: list[int]) -> list[str]:
    """The ids as NOTIFY payloads (comma-separated, each under the size limit)."""
    return [
        ",".join(map(str, ids[start : start + _NOTIFY_IDS_PER_MESSAGE]))
        for start in range(0, len(ids), _NOTIFY_IDS_PER_MESSAGE)
    ]


def _valid_topic(name: str) -> str:
    if not is_topic_name(name):
        raise InvalidTopicError(f"{name!r} is not a valid Kafka topic name")
    return name


class OutboxRelay:
    """Publishes the outbox of one schema; `wait_delivered` lets a request wait for its events."""

    def __init__(
        self,
        kafka: KafkaSettings,
        pool: asyncpg.Pool,
        *,
        schema: str,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        batch_size: int = 2000,
        idle_poll_seconds: float = 1.0,
        max_backoff_seconds: float = 5.0,
        on_published: Callable[[int], object] | None = None,
        on_dead_lettered: Callable[[int], object] | None = None,
        on_refused: Callable[[int], object] | None = None,
    ) -> None:
        self._kafka = kafka
        self._schema = schema
        self._connect = connect  # one connection of its own (LISTEN and the session lock)
        self._pool = pool
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._max_backoff = max_backoff_seconds
        self._on_published = on_published
        self._on_dead_lettered = on_dead_lettered
        self._on_refused = on_refused
        self._wake = asyncio.Event()
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self.is_leader = False
        self.published = 0
        self.dead_lettered = 0
        self.refused = 0  # batches Kafka refused to this principal (authorization)
        # While leader, ids above `_lead_from` can only be published by this relay, so
        # wait_delivered can answer from `_recent` without asking the database.
        self._lead_from: int | None = None
        self._recent: set[int] = set()
        self._recent_order: collections.deque[int] = collections.deque()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_producer()
        for future in self._waiters.values():
            future.cancel()
        self._waiters.clear()

    def kick(self) -> None:
        """Look at the outbox now rather than at the next notification or poll."""
        self._wake.set()

    async def backlog(self) -> int:
        """How many events are committed but not yet in Kafka."""
        async with self._pool.acquire() as conn:
            count: int = await conn.fetchval("SELECT count(*) FROM kafka_outbox")
            return count

    async def wait_delivered(self, ids: Iterable[int], timeout: float) -> bool:
        """Wait until Kafka has acknowledged the events with these outbox ids; False on timeout
        (they stay in the outbox and will still be published)."""
        wanted = set(ids)
        if not wanted:
            return True
        if self._task is None:
            raise NotStarted("OutboxRelay.wait_delivered called before start()")
        loop = asyncio.get_running_loop()
        futures = {i: self._waiters.setdefault(i, loop.create_future()) for i in wanted}
        self.kick()
        try:
            # Published before we registered? Then the rows are gone already.
            lead_from = self._lead_from if self.is_leader else None
            if lead_from is not None and min(wanted) > lead_from:
                self._resolve(wanted & self._recent)
            else:
                async with self._pool.acquire() as conn:
                    rows = await conn.fetch(  # still waiting, or dead-lettered: not delivered
                        """SELECT id FROM kafka_outbox WHERE id = ANY($1::bigint[])
                           UNION ALL SELECT id FROM kafka_outbox_dead WHERE id = ANY($1::bigint[])""",
                        list(wanted),
                    )
                self._resolve(wanted - {r["id"] for r in rows})
            try:
                async with asyncio.timeout(timeout):  # cheaper than wait_for: no task of its own
                    if len(futures) == 1:  # one event per request, mostly: no gathering future
                        await next(iter(futures.values()))
                    else:
                        await asyncio.gather(*futures.values())
            except TimeoutError:
                return False
            return True
        finally:
            for i in wanted:
                self._waiters.pop(i, None)

    def _resolve(self, ids: Iterable[int]) -> None:
        for i in ids:
            future = self._waiters.get(i)
            if future is not None and not future.done():
                future.set_result(None)

    def _remember(self, ids: list[int]) -> None:
        self._recent.update(ids)
        self._recent_order.extend(ids)
        while len(self._recent_order) > _RECENT_IDS:
            self._recent.discard(self._recent_order.popleft())

    def _on_wake(self, *_: object) -> None:
        self._wake.set()

    def _on_done(self, conn: asyncpg.Connection, pid: int, _channel: str, payload: str) -> None:
        # Our own announcements come back to us too (we listen where we publish): already resolved.
        if payload and pid != conn.get_server_pid():
            self._resolve(int(i) for i in payload.split(","))

    async def _wait_wake(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._idle_poll)
        self._wake.clear()

    async def _run(self) -> None:
        backoff = 0.2
        schema = self._schema
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                await conn.add_listener(wake_channel(schema), self._on_wake)
                await conn.add_listener(done_channel(schema), self._on_done)
                while not await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1))", f"kafka_outbox:{schema}"
                ):
                    await self._wait_wake()
                # Every id allocated before now was published by an earlier leader or is in the table.
                self._lead_from = await conn.fetchval(
                    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM kafka_outbox_id_seq"
                )
                self.is_leader = True
                log.info("outbox relay for schema %s is the publisher", schema)
                backoff = 0.2
                while True:
                    if not await self._publish_batch(conn):
                        await self._wait_wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database gone: reconnect, and let another instance lead
                log.warning("outbox relay for %s restarting after error: %r", schema, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            finally:
                self.is_leader = False
                self._lead_from = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        """Publish the oldest events; how many left the outbox (published or dead-lettered)."""
        rows: Sequence[asyncpg.Record] = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM kafka_outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        settled = 0
        backoff = 0.2
        while rows:
            outcomes = await self._send_all(rows)
            published: list[int] = []
            dead: list[tuple[asyncpg.Record, BaseException]] = []
            waiting: Sequence[asyncpg.Record] = []
            for n, (row, outcome) in enumerate(zip(rows, outcomes, strict=True)):
                if outcome is None:
                    published.append(row["id"])
                elif is_permanent(outcome):
                    dead.append((row, outcome))
                else:  # Kafka unreachable or refusing for now: this one and all after it wait
                    waiting = rows[n:]
                    self._wait_logged(outcome, len(waiting))
                    break
            if dead:
                await bury(conn, [(r["id"], f"{type(e).__name__}: {e}") for r, e in dead], published)
                self._dead_lettered(dead)
                await self._announce(conn, published)
            elif published:
                await self._delete_and_announce(conn, published)
            settled += len(published) + len(dead)
            if waiting:
                await self._drop_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            rows = waiting
        return settled

    def _wait_logged(self, error: BaseException, waiting: int) -> None:
        if refusal(error):  # an ACL is missing: loud, counted; the rows wait, in order, for it
            self.refused += 1
            if self._on_refused is not None:
                self._on_refused(1)
            log.error(
                "outbox relay for %s: Kafka refuses %s: %r; %d events (and all behind them) "
                "stay in the outbox until an ACL allows the write",
                self._schema,
                who(self._kafka),
                error,
                waiting,
            )
        else:
            log.warning("outbox relay: %d events wait for Kafka (%r)", waiting, error)

    def _dead_lettered(self, dead: list[tuple[asyncpg.Record, BaseException]]) -> None:
        for row, error in dead:
            log.error(
                "outbox relay: event %d (topic %s, key %s, value %s bytes) can never be published"
                " and was moved to kafka_outbox_dead: %s: %s",
                row["id"],
                row["topic"],
                row["key"],
                len(row["value"]) if row["value"] is not None else 0,
                type(error).__name__,
                error,
            )
        if dead:
            self.dead_lettered += len(dead)
            if self._on_dead_lettered is not None:
                self._on_dead_lettered(len(dead))

    async def _delete_and_announce(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        """Delete published rows and announce them in one statement (one round trip, where
        `bury` and `_announce` take four: the delete's transaction and a NOTIFY)."""
        await conn.execute(
            """WITH gone AS (DELETE FROM kafka_outbox WHERE id = ANY($1::bigint[]))
               SELECT pg_notify($2, chunk) FROM unnest($3::text[]) AS chunk""",
            ids,
            done_channel(self._schema),
            _notify_payloads(ids),
        )
        self._announced(ids)

    async def _announce(self, conn: asyncpg.Connection, ids: list[int]) -> None:
        for payload in _notify_payloads(ids):
            await conn.execute("SELECT pg_notify($1, $2)", done_channel(self._schema), payload)
        self._announced(ids)

    def _announced(self, ids: list[int]) -> None:
        self._remember(ids)
        self._resolve(ids)
        self.published += len(ids)
        if ids and self._on_published is not None:
            self._on_published(len(ids))

    async def _send_all(self, rows: Sequence[asyncpg.Record]) -> list[Outcome]:
        """Send the rows in order; each one's outcome. A retriable error while handing a record
        to the producer stops there: it and the rows after it get that error."""
        try:
            producer = await self._started_producer()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return [exc] * len(rows)
        sent: list[asyncio.Future[object] | BaseException] = []
        stopped: list[Outcome] = []
        for n, r in enumerate(rows):
            try:
                sent.append(
                    await producer.send(
                        _valid_topic(self._kafka.topic(r["topic"])),
                        value=r["value"],
                        key=r["key"].encode(),
                        headers=kafka_headers(r["headers"]),
                    )
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_permanent(exc):
                    stopped = [exc] * (len(rows) - n)
                    break
                sent.append(exc)
        futures = [s for s in sent if not isinstance(s, BaseException)]
        results = iter(await asyncio.gather(*futures, return_exceptions=True))
        outcomes: list[Outcome] = []
        for s in sent:
            result = s if isinstance(s, BaseException) else next(results)
            outcomes.append(result if isinstance(result, BaseException) else None)
        return outcomes + stopped

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # No linger: a batch is handed over whole before the producer's sender runs, so
            # waiting for more records would only delay the requests waiting for their events.
            producer = new_producer(self._kafka, linger_ms=0)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
