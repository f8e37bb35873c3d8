"""Reading records back from Kafka without a consumer group: a partition from an offset or a
time, a whole (small) topic, one record at a position. Reading commits nothing and disturbs no
service. Records come out as `kafka_integration.tail.record_as_dict` shows them (text escaped)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from console.errors import NotFound
from kafka_integration import KafkaSettings, TopicMetadata
from kafka_integration.tail import record_as_dict

READ_TIMEOUT = 10.0  # seconds to reach the end found at start


@asynccontextmanager
async def reader(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer with no group, reading committed records only."""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(), enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def partitions(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    """The partitions of a logical topic; NotFound when the broker does not know it."""
    async with TopicMetadata(kafka) as metadata:
        tps = await metadata.partitions(kafka.topic(topic))
    if not tps:
        raise NotFound(f"no topic {topic!r}")
    return tps


async def read_partition(
    kafka: KafkaSettings,
    topic: str,
    partition: int,
    *,
    offset: int | None = None,
    at_ms: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Up to `limit` records of one partition from `offset` (or the first at or after `at_ms`,
    or the beginning), stopping at the end the broker reports when reading starts."""
    tps = await partitions(kafka, topic)
    tp = TopicPartition(kafka.topic(topic), partition)
    if tp not in tps:
        raise NotFound(f"topic {topic!r} has no partition {partition}")
    async with reader(kafka) as consumer:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        begin = (await consumer.beginning_offsets([tp]))[tp]
        if at_ms is not None:
            found = (await consumer.offsets_for_times({tp: at_ms}))[tp]
            start = end if found is None else found.offset
        else:
            start = max(begin, offset if offset is not None else begin)
        if start >= end:
            return []
        consumer.seek(tp, start)
        return await _until(consumer, {tp: end}, limit)


async def read_topic(kafka: KafkaSettings, topic: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The last `limit` records of a whole topic up to its end now, by partition then offset."""
    tps = await partitions(kafka, topic)
    async with reader(kafka) as consumer:
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        begin = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - limit))
        out = await _until(consumer, {tp: end[tp] for tp in tps if end[tp] > begin[tp]}, None)
    out.sort(key=lambda r: (r["timestamp"], r["partition"], r["offset"]))
    return out[-limit:]


async def read_one(kafka: KafkaSettings, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """The record at (partition, offset); NotFound when there is none (never written, aborted,
    or removed by retention or compaction)."""
    got = await read_partition(kafka, topic, partition, offset=offset, limit=1)
    if not got or got[0]["offset"] != offset:
        raise NotFound(f"no record at {topic}/{partition}/{offset}")
    return got[0]


async def _until(
    consumer: AIOKafkaConsumer, end: dict[TopicPartition, int], limit: int | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + READ_TIMEOUT
    remaining = {tp for tp, e in end.items() if await consumer.position(tp) < e}
    while remaining and time.monotonic() < deadline:
        batch = await consumer.getmany(*remaining, timeout_ms=300)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp]:
                    out.append(record_as_dict(record))
                    if limit is not None and len(out) >= limit:
                        return out
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
        await asyncio.sleep(0)
    return out


def logical(kafka: KafkaSettings, physical: str) -> str:
    """A physical topic name without the prefix."""
    prefix = kafka.topic_prefix
    return physical[len(prefix) :] if prefix and physical.startswith(prefix) else physical
