"""Fixtures for the materializer against the real broker: seed topics, producing, a factory of
started materializers (stopped at the end of the test), and a read_committed reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kafka_integration import KafkaSettings, TopicMetadata, TopicSpec, ensure_topics
from kafka_integration.reading import records_to_end
from materializer import Materializer, MaterializerSettings, Topology
from tests.support import PATIENCE, unique

PARTITIONS = 3
Value = dict[str, Any] | bytes | None


@pytest.fixture
async def seed_topics(kafka: KafkaSettings) -> None:
    await ensure_topics(
        kafka,
        [
            TopicSpec("organizations", partitions=PARTITIONS),
            TopicSpec("customers", partitions=PARTITIONS),
            TopicSpec("orders", partitions=PARTITIONS, compacted=False),
            TopicSpec("orders_created", partitions=PARTITIONS, compacted=False),
            TopicSpec("materializer_dead_letters", partitions=1, compacted=False),
        ],
    )


@pytest.fixture
async def producer(kafka: KafkaSettings) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    p = AIOKafkaProducer(**kafka.client_kwargs(), enable_idempotence=True, linger_ms=5)
    await p.start()

    async def produce(topic: str, items: Iterable[tuple[Any, Value]], partition: int | None = None) -> None:
        futures = []
        for key, value in items:
            raw = orjson.dumps(value) if isinstance(value, dict) else value
            k = None if key is None else str(key).encode()
            futures.append(await p.send(kafka.topic(topic), raw, key=k, partition=partition))
        await asyncio.gather(*futures)

    yield produce
    await p.stop()


@pytest.fixture
def settings_for(kafka: KafkaSettings, tmp_path: Path) -> Callable[..., MaterializerSettings]:
    group = unique("mat_")

    def make(name: str = "a", **overrides: Any) -> MaterializerSettings:
        base: dict[str, Any] = {
            "kafka": kafka,
            "group_id": group,
            "state_dir": tmp_path / f"state-{name}",
            "join_wait_seconds": 20.0,
            "session_timeout_ms": 6000,
        }
        return MaterializerSettings(**{**base, **overrides})

    return make


@pytest.fixture
async def start_materializer(
    settings_for: Callable[..., MaterializerSettings],
) -> AsyncIterator[Callable[..., Awaitable[Materializer]]]:
    started: list[Materializer] = []

    async def start(topology: Topology, name: str = "a", **overrides: Any) -> Materializer:
        state = overrides.pop("state", "rocksdb")
        m = Materializer(topology, settings_for(name, **overrides), state=state)
        await m.start()
        started.append(m)
        return m

    yield start
    for m in reversed(started):
        await m.stop()


async def read_committed(
    kafka: KafkaSettings, topic: str, *, min_count: int = 0, timeout: float = PATIENCE
) -> list[dict[str, Any]]:
    """Every committed record of a logical topic (value parsed, plus _key/_partition/_offset),
    waiting up to `timeout` for at least `min_count`."""
    name = kafka.topic(topic)
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",  # with "latest", its reset can land after seek_to_beginning
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            out = await _read_all(kafka, consumer, name)
            if len(out) >= min_count or loop.time() > deadline:
                return out
            await asyncio.sleep(0.3)
    finally:
        await consumer.stop()


async def _read_all(kafka: KafkaSettings, consumer: AIOKafkaConsumer, name: str) -> list[dict[str, Any]]:
    async with TopicMetadata(kafka) as metadata:
        tps = await metadata.partitions(name)
    out: list[dict[str, Any]] = []
    async for r in records_to_end(consumer, tps, max_records=50000):
        value = orjson.loads(r.value) if r.value is not None else {}
        value.update(_key=r.key.decode() if r.key else None, _partition=r.partition, _offset=r.offset)
        out.append(value)
    return out
