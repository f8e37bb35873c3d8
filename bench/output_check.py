"""What a join engine wrote to its output topic, against what it should have written: every order
exactly once, with its organization's name and its customer's name, last name and email.

The expectation is read back from the input topics themselves (not regenerated), so the checker
knows nothing of how `fill` made the data. The output topics are created with
`message.timestamp.type=LogAppendTime`: each output record carries the broker's clock at the
moment it was written, so "the last output" is read after the engine has stopped, without a
consumer racing the engine for the two cores while it runs.

    wait_settled(kafka, topic, expected, alive)   # while the engine runs: end offsets only
    check(kafka, topic, expectation)               # after it stopped: every record
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import KafkaSettings, TopicMetadata
from kafka_integration.reading import records_to_end

BROKER_TIME = {"message.timestamp.type": "LogAppendTime"}  # the config of every output topic

FIELDS = (
    "po",
    "organization_id",
    "customer_id",
    "organization_name",
    "customer_name",
    "customer_last_name",
    "email",
)  # plus "id", the key of the check; other fields are ignored


@dataclass
class Verdict:
    """The check of one engine's output topic."""

    expected: int
    outputs: int = 0
    distinct: int = 0
    duplicates: int = 0  # records beyond the first of an order
    missing: int = 0
    wrong: int = 0  # records whose id is an order but some field differs (or is not JSON)
    unknown: int = 0  # records whose id is no order
    first_wrong: str = ""
    some_missing: list[int] = field(default_factory=list)  # the lowest missing order ids
    last_append_ms: int = 0  # broker time of the last output record

    @property
    def ok(self) -> bool:
        return self.outputs == self.distinct == self.expected and not (self.wrong or self.unknown)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


async def _partitions(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    async with TopicMetadata(kafka) as metadata:
        return await metadata.wait_partitions(topic)


async def _read(kafka: KafkaSettings, topic: str, handle: Callable[[Any], None]) -> None:
    """Every committed record of `topic` from its beginning to its end offsets as of now."""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=2 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = await _partitions(kafka, topic)
        async for record in records_to_end(consumer, tps, max_records=10000, timeout_ms=1000):
            handle(record)
    finally:
        await consumer.stop()


async def expectation(kafka: KafkaSettings) -> dict[int, tuple[Any, ...]]:
    """Order id -> the values of FIELDS that its output must carry, from the input topics."""
    orgs: dict[Any, Any] = {}
    customers: dict[Any, tuple[Any, Any, Any]] = {}
    orders: dict[int, tuple[Any, Any, Any]] = {}

    def org(record: Any) -> None:
        v = orjson.loads(record.value)
        orgs[v["id"]] = v["name"]

    def customer(record: Any) -> None:
        v = orjson.loads(record.value)
        customers[v["id"]] = (v["name"], v["last_name"], v["email"])

    def order(record: Any) -> None:
        v = orjson.loads(record.value)
        orders[int(v["id"])] = (v["po"], v["organization_id"], v["customer_id"])

    await _read(kafka, kafka.topic("organizations"), org)
    await _read(kafka, kafka.topic("customers"), customer)
    await _read(kafka, kafka.topic("orders"), order)
    return {
        oid: (po, org_id, cust_id, orgs[org_id], *customers[cust_id])
        for oid, (po, org_id, cust_id) in orders.items()
    }


def _norm(value: Any) -> str:
    return str(value)


async def check(
    kafka: KafkaSettings, topic: str, expect: dict[int, tuple[Any, ...]], id_field: str = "id"
) -> Verdict:
    """Read the whole output topic and compare each record with its order's expectation (the
    order's id read from `id_field`)."""
    verdict = Verdict(expected=len(expect))
    seen: set[int] = set()
    wanted = {oid: tuple(_norm(x) for x in values) for oid, values in expect.items()}

    def handle(record: Any) -> None:
        verdict.outputs += 1
        verdict.last_append_ms = max(verdict.last_append_ms, record.timestamp)
        try:
            v = orjson.loads(record.value)
            oid = int(v[id_field])
            got = tuple(_norm(v.get(name)) for name in FIELDS)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            verdict.wrong += 1
            verdict.first_wrong = verdict.first_wrong or repr(record.value[:300])
            return
        if oid not in wanted:
            verdict.unknown += 1
            return
        if oid in seen:
            verdict.duplicates += 1
        seen.add(oid)
        if got != wanted[oid]:
            verdict.wrong += 1
            verdict.first_wrong = verdict.first_wrong or (
                f"{record.value[:300]!r}, expected {dict(zip(FIELDS, expect[oid], strict=True))}"
            )

    await _read(kafka, topic, handle)
    verdict.distinct = len(seen)
    verdict.missing = len(expect) - len(seen)
    verdict.some_missing = sorted(set(expect) - seen)[:10]
    return verdict


async def wait_settled(
    kafka: KafkaSettings,
    topic: str,
    expected: int,
    alive: Callable[[], bool],
    settle: float = 3.0,
    idle: float = 120.0,
    timeout: float = 3600.0,
) -> str:
    """Watch the output topic's end offsets while the engine runs, and say why watching stopped:
    "exited" (the engine stopped itself), "settled" (at least `expected` offsets and no new one for
    `settle` s), "idle" (no new offset for `idle` s: it emits less than expected, or nothing) or
    "timeout". End offsets only: no record is fetched while the engine runs. (A transactional
    producer's commit markers take offsets too, so "settled" waits for the end to stop moving.)"""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(kafka, topic)
        start = last_change = time.monotonic()
        total = -1
        while True:
            if not alive():
                return "exited"
            now_total = sum((await consumer.end_offsets(tps)).values())
            now = time.monotonic()
            if now_total != total:
                total, last_change = now_total, now
            if total >= expected and now - last_change >= settle:
                return "settled"
            if now - last_change >= idle:
                return "idle"
            if now - start >= timeout:
                return "timeout"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
