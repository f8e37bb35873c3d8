"""The changelog of parked records: what makes parking durable and exactly-once.

A stream partition's parked records (`materializer/parking.py`) belong to the partition, not to
the worker: they follow it across restarts and rebalances. Each stream topic has a compacted
changelog topic, `{group_id}-{topic}-parked` (logical name), with as many partitions as the
stream; partition p holds the parked records of stream partition p, keyed by their offset.

- Parking a record puts it there, and releasing it (joined or dead-lettered) puts a tombstone,
  both inside the partition's Kafka transaction, with its outputs and its next offset: the
  committed offset moves past a parked record exactly when its park is committed, and a parked
  record's output is committed exactly with its release. After a kill -9 both are as of the last
  commit; an aborted transaction leaves neither.
- A new owner loads the partition whole (read_committed) after its transactional producer has
  fenced the old owner and settled its open transaction, and before it reads any stream record.
  The partition has one writer at a time, so its end offset is then final.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import KafkaSettings
from materializer.source import Record

FETCH_MAX_WAIT_MS = 50


def parked_topic(group_id: str, stream_topic: str) -> str:
    """Logical name of a stream topic's changelog of parked records."""
    return f"{group_id}-{stream_topic}-parked"


def encode(record: Record) -> tuple[bytes, bytes]:
    """Key and value of a parked record in its changelog."""
    value = {
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": None if record.key is None else base64.b64encode(record.key).decode(),
        "value": None if record.value is None else base64.b64encode(record.value).decode(),
    }
    return str(record.offset).encode(), orjson.dumps(value)


def release_key(record: Record) -> bytes:
    """Key of the tombstone that releases a parked record."""
    return str(record.offset).encode()


def decode(topic: str, partition: int, raw: bytes) -> Record:
    data: dict[str, Any] = orjson.loads(raw)
    return Record(
        topic,
        partition,
        int(data["offset"]),
        int(data["timestamp"]),
        None if data["key"] is None else base64.b64decode(data["key"]),
        None if data["value"] is None else base64.b64decode(data["value"]),
    )


class ParkedLog:
    """Loads a stream partition's parked records from its changelog (one reading consumer,
    one partition at a time). Writing is done by the partition's transaction."""

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    def topic(self, stream_topic: str) -> str:
        """Physical name of a stream topic's changelog."""
        return self._kafka.topic(parked_topic(self._group_id, stream_topic))

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            # A fetch in flight to the broker holds back the next load's offset reset (aiokafka
            # sends one request per node at a time): keep the long poll short.
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def load(self, stream_topic: str, partition: int) -> list[Record]:
        """The records parked in `partition` of `stream_topic` (logical), as last committed.

        A partition with nothing committed (most of them) costs two offset requests and no lock:
        every partition of a worker loads before it reads its first record, one after another
        through the lock, so a fetch per partition would delay the last ones by seconds."""
        assert self._consumer is not None
        consumer = self._consumer
        tp = TopicPartition(self.topic(stream_topic), partition)
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]  # final: this worker is its only writer now
        if end <= begin:
            return []
        parked: dict[bytes, bytes] = {}
        async with self._lock:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=500)
                for r in batches.get(tp, ()):
                    if r.offset >= end or r.key is None:
                        continue
                    if r.value is None:
                        parked.pop(r.key, None)
                    else:
                        parked[r.key] = r.value
            consumer.assign([])
        return [decode(stream_topic, partition, raw) for raw in parked.values()]
