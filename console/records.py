"""Reading records back from Kafka without a consumer group: a partition from an offset or a
time, a whole (small) topic, one record at a position. Reading commits nothing and disturbs no
service. Records come out as `kafka_integration.tail.record_as_dict` shows them (text escaped)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from console.errors import InvalidInput, NotFound, Unavailable
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


async def scan_back(
    kafka: KafkaSettings,
    topic: str,
    keep: Callable[[Any], bool],
    *,
    before: dict[int, int] | None = None,
    want: int = 50,
    chunk: int = 2000,
    budget: int = 20_000,
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The records `keep` accepts, read backwards from `before` (partition -> offset, exclusive;
    None: from the end of every partition now), `chunk` offsets per partition at a time, until
    `want` are found or `budget` offsets have been read: a request stays bounded however long the
    topic. Returns them newest first, and where to go on (partition -> offset; a partition read
    back to its beginning is left out, so {} means there is nothing older). A partition named in
    `before` that the topic does not have is InvalidInput (of `before`)."""
    tps = {tp.partition: tp for tp in await partitions(kafka, topic)}
    if before is not None and (missing := sorted(set(before) - set(tps))):
        raise InvalidInput("before", f"topic {topic!r} has no partition {missing[0]}")
    out: list[dict[str, Any]] = []
    async with reader(kafka) as consumer:
        consumer.assign(list(tps.values()))
        end = await consumer.end_offsets(list(tps.values()))
        begin = await consumer.beginning_offsets(list(tps.values()))
        upper = {
            p: min(end[tp], before[p]) if before is not None else end[tp]
            for p, tp in tps.items()
            if before is None or p in before
        }
        read = 0
        while read < budget and len(out) < want:
            targets: dict[TopicPartition, int] = {}
            for p, top in upper.items():
                tp = tps[p]
                if top > begin[tp]:
                    start = max(begin[tp], top - chunk)
                    consumer.seek(tp, start)
                    targets[tp] = top
                    upper[p] = start
                    read += top - start
            if not targets:
                break
            out.extend(await _until(consumer, targets, None, keep))
            for tp, top in targets.items():
                if await consumer.position(tp) < top:
                    raise Unavailable(f"Kafka did not return {topic}/{tp.partition} up to {top} in time")
    out.sort(key=lambda r: (r["timestamp"], r["partition"], r["offset"]), reverse=True)
    return out, {p: top for p, top in upper.items() if top > begin[tps[p]]}


async def _until(
    consumer: AIOKafkaConsumer,
    end: dict[TopicPartition, int],
    limit: int | None,
    keep: Callable[[Any], bool] | None = None,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + READ_TIMEOUT
    remaining = {tp for tp, e in end.items() if await consumer.position(tp) < e}
    while remaining and time.monotonic() < deadline:
        batch = await consumer.getmany(*remaining, timeout_ms=300)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp] and (keep is None or keep(record)):
                    out.append(record_as_dict(record))
                    if limit is not None and len(out) >= limit:
                        return out
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
        await asyncio.sleep(0)
    if remaining:  # a read cut short is no answer: never an empty or partial list shown as whole
        late = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(remaining))
        raise Unavailable(
            f"Kafka did not deliver {late} up to its end within {READ_TIMEOUT:.0f} s; try again"
        )
    return out


def logical(kafka: KafkaSettings, physical: str) -> str:
    """A physical topic name without the prefix."""
    prefix = kafka.topic_prefix
    return physical[len(prefix) :] if prefix and physical.startswith(prefix) else physical
