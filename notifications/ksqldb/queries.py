"""Running a checked query (notifications.ksqldb.statements.Query).

Pull: the rows of a table, read from the API's own materializer (its tables are the worker's,
folded from the same topics), by key when the WHERE names the key, else by a scan.

Push: the new records of a stream, read from the stream's topic with a consumer of the query's
own (no group, every partition, from the end as it stands when the query starts): a source stream's
topic (orders, customers...), or the topic a joined stream writes (orders_created is written by
the worker's join; the API does not run the join a second time). A record is sent once it is on
the topic; a record of the topic that was there before the query started is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from kafka_integration import KafkaSettings, TopicMetadata
from materializer import Materializer
from materializer.sql.catalog import Column, JoinedDecl, SourceStream
from notifications.ksqldb.statements import Query
from servicekit.errors import Unavailable

POLL_MS = 250
TOPIC_WAIT_SECONDS = 5.0


def query_id(q: Query) -> str:
    kind = "transient" if q.push else "query"
    return f"{kind}_{q.source.name}_{uuid.uuid4().int % 10**19}"


def _typed_key(key: str, column: Column) -> Any:
    if int in column.types and key.lstrip("-").isdigit():
        return int(key)
    return key


def pull(materializer: Materializer, q: Query) -> list[list[Any]]:
    """The rows a pull query answers, in key order."""
    if isinstance(q.source, SourceStream | JoinedDecl):
        raise ValueError("a pull query reads a table")
    table = materializer.table(q.source.field)
    key_column = q.source.key
    if q.key_equals is not None:
        found = table.get(q.key_equals)
        candidates: Any = [] if found is None else [(q.key_equals, found)]
    else:
        candidates = table.items()
    out = []
    for key, stored in candidates:
        row = {**stored, key_column.field: _typed_key(key, key_column)}
        if q.where is not None and not q.where(row):
            continue
        out.append(_values(row, q.columns))
        if q.limit is not None and len(out) >= q.limit:
            break
    return out


def _values(row: Mapping[str, Any], columns: list[Column]) -> list[Any]:
    return [row.get(c.field) for c in columns]


class PushQuery:
    """A consumer of the stream's topic from its end; `rows()` yields what each new record answers."""

    def __init__(self, kafka: KafkaSettings, q: Query) -> None:
        if not isinstance(q.source, SourceStream | JoinedDecl):
            raise ValueError("a push query reads a stream")
        self.kafka = kafka
        self.query = q
        self.topic = kafka.topic(q.source.topic)
        self._consumer: AIOKafkaConsumer | None = None
        self._ending = False

    def end(self) -> None:
        """Make `rows()` return after its current poll (the app is shutting down)."""
        self._ending = True

    async def start(self) -> None:
        """Assign every partition and fix the end: records written after this are answered.
        Unavailable if the topic does not exist or Kafka cannot be reached."""
        consumer = AIOKafkaConsumer(**self.kafka.client_kwargs(), enable_auto_commit=False)
        try:
            await consumer.start()
            async with TopicMetadata(self.kafka) as metadata:
                partitions = await metadata.wait_partitions(self.topic, TOPIC_WAIT_SECONDS)
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:
                await consumer.position(tp)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise Unavailable(f"the stream's topic {self.topic} cannot be read now: {exc}") from exc
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def rows(self) -> AsyncIterator[list[Any] | None]:
        """Each new record's answer, in order per partition; None after a poll with none (a
        chance for the caller to see whether its client is still there); returns once `end()`
        has been called."""
        assert self._consumer is not None, "start() first"
        while not self._ending:
            batches = await self._consumer.getmany(timeout_ms=POLL_MS, max_records=500)
            sent = False
            for records in batches.values():
                for record in records:
                    row = _decode(record.value)
                    if row is None or (self.query.where is not None and not self.query.where(row)):
                        continue
                    sent = True
                    yield _values(row, self.query.columns)
            if not sent:
                yield None
            await asyncio.sleep(0)


def _decode(raw: bytes | None) -> dict[str, Any] | None:
    """A record's JSON object; None for a tombstone or anything that is not one (skipped)."""
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
