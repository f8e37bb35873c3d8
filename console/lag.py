"""The worker's consumer group as Kafka sees it: per stream partition, the committed offset,
the end offset and the lag; the group's members and their assigned partitions."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.group import MemberAssignment

from console import records
from console.config import OperationsSettings


async def partition_lag(ops: OperationsSettings) -> list[dict[str, Any]]:
    """Each partition the group has committed an offset for: topic (logical), partition,
    committed, end and lag, sorted by topic and partition (with clients of its own)."""
    admin = AIOKafkaAdminClient(**ops.kafka.client_kwargs())
    await admin.start()
    try:
        async with records.reader(ops.kafka) as consumer:
            return await group_lag(ops, admin, consumer)
    finally:
        await admin.close()


async def group_lag(
    ops: OperationsSettings, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer
) -> list[dict[str, Any]]:
    """As `partition_lag`, with the caller's (long-lived) admin client and consumer."""
    committed: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(ops.group_id)
    tps = sorted(committed, key=lambda tp: (tp.topic, tp.partition))
    if not tps:
        return []
    end = await consumer.end_offsets(tps)
    return [
        {
            "topic": records.logical(ops.kafka, tp.topic),
            "partition": tp.partition,
            "committed": committed[tp].offset,
            "end": end[tp],
            "lag": max(0, end[tp] - max(0, committed[tp].offset)),
        }
        for tp in tps
    ]


async def members(ops: OperationsSettings) -> list[dict[str, Any]]:
    """The group's members now: client id, host and their assigned partitions."""
    admin = AIOKafkaAdminClient(**ops.kafka.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([ops.group_id])
    finally:
        await admin.close()
    out: list[dict[str, Any]] = []
    for response in described:
        for group in response.groups:
            for member in group[5] if len(group) > 5 else []:
                member_id, _instance, client_id, host, _meta, raw_assignment = _member_fields(member)
                assigned: list[str] = []
                if raw_assignment:
                    try:
                        decoded = MemberAssignment.decode(raw_assignment)
                        for topic, parts in decoded.assignment:
                            assigned.extend(f"{records.logical(ops.kafka, topic)}/{p}" for p in parts)
                    except Exception:
                        assigned.append("(not readable)")
                out.append(
                    {"member": member_id, "client": client_id, "host": host, "partitions": sorted(assigned)}
                )
    return out


def _member_fields(member: Any) -> tuple[Any, ...]:
    """(member id, group instance id, client id, host, metadata, assignment) across versions."""
    fields = tuple(member)
    return fields if len(fields) == 6 else (fields[0], None, *fields[1:5])
