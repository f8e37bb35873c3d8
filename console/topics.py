"""The topics of this system (those under KAFKA_TOPIC_PREFIX): partitions, cleanup policy,
beginning and end offsets; a partition browsed from an offset or a time (records.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from console import records
from console.errors import InvalidInput
from kafka_integration import KafkaSettings, TopicMetadata

MAX_PARTITION = 100_000
MAX_OFFSET = 2**63 - 1


async def listing(kafka: KafkaSettings) -> list[dict[str, Any]]:
    """Each topic (logical name) with its partitions' beginning and end offsets and its cleanup policy."""
    async with TopicMetadata(kafka) as metadata:
        counts = await metadata.partition_counts()
    names = sorted(t for t in counts if t.startswith(kafka.topic_prefix) and not t.startswith("__"))
    if not names:
        return []
    policies = await _cleanup_policies(kafka, names)
    tps = [TopicPartition(t, p) for t in names for p in range(counts[t])]
    async with records.reader(kafka) as consumer:
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
    return [
        {
            "name": records.logical(kafka, t),
            "cleanup_policy": policies.get(t, "?"),
            "partitions": [
                {"partition": p, "begin": begin[TopicPartition(t, p)], "end": end[TopicPartition(t, p)]}
                for p in range(counts[t])
            ],
        }
        for t in names
    ]


async def _cleanup_policies(kafka: KafkaSettings, names: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"cleanup.policy": None}) for n in names]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    out: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    out[name] = entry[1]
    return out


def check_position(partition: str, offset: str, at: str) -> tuple[int, int | None, int | None]:
    """(partition, offset, at_ms) from a query; InvalidInput naming the field otherwise."""
    part = _number("partition", partition or "0", MAX_PARTITION)
    off = _number("offset", offset, MAX_OFFSET) if offset else None
    at_ms = None
    if at:
        if len(at) > 40:
            raise InvalidInput("at", "an ISO 8601 time, e.g. 2026-01-31T12:00:00Z")
        try:
            when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("at", "an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        at_ms = max(0, int(when.timestamp() * 1000))
    return part, off, at_ms


def _number(field: str, raw: str, top: int) -> int:
    if len(raw) > 19 or not raw.isascii() or not raw.isdigit() or int(raw) > top:
        raise InvalidInput(field, f"a whole number from 0 to {top}")
    return int(raw)


def check_topic(raw: str) -> str:
    """A logical topic name as Kafka allows them; InvalidInput naming `topic` otherwise."""
    if not raw or len(raw) > 200 or not raw.isascii() or not all(c.isalnum() or c in "._-" for c in raw):
        raise InvalidInput("topic", "a topic name: letters, digits, '.', '_' and '-'")
    return raw
