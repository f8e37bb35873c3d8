"""Exactly-once output across kill -9, and partitions moving to a new worker."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import KafkaSettings
from materializer import Materializer
from tests.materializer.conftest import read_committed
from tests.materializer.topologies import seed_topology
from tests.support import ROOT, unique, wait_until

pytestmark = pytest.mark.usefixtures("seed_topics")

Produce = Callable[..., Awaitable[None]]
Start = Callable[..., Awaitable[Materializer]]


def order(i: int, customers: int = 500, orgs: int = 20) -> dict[str, Any]:
    return {"id": i, "po": f"PO-{i}", "organization_id": i % orgs, "customer_id": i % customers}


async def fill_tables(producer: Produce, customers: int = 500, orgs: int = 20) -> None:
    await producer("organizations", [(i, {"id": i, "name": f"Org {i}"}) for i in range(orgs)])
    await producer(
        "customers",
        [(i, {"id": i, "name": f"N{i}", "email": f"{i}@x", "action": "created"}) for i in range(customers)],
    )


def assert_each_once(out: list[dict[str, Any]], expected: int) -> None:
    counts = collections.Counter(o["id"] for o in out)
    repeated = {k: n for k, n in counts.items() if n > 1}
    missing = set(range(expected)) - set(counts)
    assert not repeated and not missing, (
        len(repeated),
        sorted(repeated)[:5],
        len(missing),
        sorted(missing)[:5],
    )
    assert len(out) == expected


async def test_adding_a_worker_moves_partitions_without_loss_or_repeat(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    await fill_tables(producer)
    a = await start_materializer(seed_topology(), "a")
    total, step = 6000, 1000
    await producer("orders", [(i, order(i)) for i in range(step)])
    await read_committed(kafka, "orders_created", min_count=step // 2)
    second: asyncio.Task[Materializer] = asyncio.create_task(start_materializer(seed_topology(), "b"))
    for start in range(step, 3 * step, step):  # keep producing while the group rebalances
        await producer("orders", [(i, order(i)) for i in range(start, start + step)])
        await asyncio.sleep(0.3)
    b = await second

    async def split() -> bool:
        return bool(a.assignment()) and bool(b.assignment())

    await wait_until(split)
    for start in range(3 * step, total, step):  # and after: some of these are b's to join
        await producer("orders", [(i, order(i)) for i in range(start, start + step)])
    out = await read_committed(kafka, "orders_created", min_count=total, timeout=90)
    assert_each_once(out, total)
    assert a.assignment().isdisjoint(b.assignment())
    assert a.records_out + b.records_out >= total
    assert b.records_out > 0


async def _output_progress(kafka: KafkaSettings) -> int:
    consumer = AIOKafkaConsumer(**kafka.client_kwargs())
    await consumer.start()
    try:
        name = kafka.topic("orders_created")
        tps = [TopicPartition(name, p) for p in range(3)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def _wait_for_a_release(kafka: KafkaSettings, first_late_id: int, deadline: float) -> None:
    """Until the output holds a joined late order (id >= `first_late_id`), read uncommitted: its
    release transaction is open or has just committed. (The end offsets cannot tell: they count
    each transaction's commit marker too, so they grow with the other orders' commits.)"""
    consumer = AIOKafkaConsumer(
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        name = kafka.topic("orders_created")
        consumer.assign([TopicPartition(name, p) for p in range(3)])
        loop = asyncio.get_running_loop()
        while True:
            batch = await consumer.getmany(timeout_ms=20)
            for records in batch.values():
                for r in records:
                    if r.value is not None and orjson.loads(r.value)["id"] >= first_late_id:
                        return
            assert loop.time() < deadline, "no release"
    finally:
        await consumer.stop()


@pytest.mark.slow
async def test_kill_9_during_100k_events_leaves_each_output_exactly_once(
    kafka: KafkaSettings, producer: Produce, test_env: dict[str, str], tmp_path: Path
) -> None:
    total = 100_000
    await fill_tables(producer)
    for start in range(0, total, 20_000):
        await producer("orders", [(i, order(i)) for i in range(start, start + 20_000)])
    env = {**os.environ, **test_env, "GROUP_ID": unique("kill_"), "STATE_DIR": str(tmp_path / "state")}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tests.materializer.kill_worker"], cwd=ROOT, env=env)

    loop = asyncio.get_running_loop()
    first = spawn()
    try:
        deadline = loop.time() + 90
        while await _output_progress(kafka) < total // 4:
            assert first.poll() is None, "worker exited"
            assert loop.time() < deadline, "no progress"
            await asyncio.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = len(await read_committed(kafka, "orders_created"))
    assert 0 < before < total, before
    second = spawn()
    try:
        out = await read_committed(kafka, "orders_created", min_count=total, timeout=120)
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    assert_each_once(out, total)
    assert await read_committed(kafka, "materializer_dead_letters") == []


@pytest.mark.slow  # a worker killed with SIGKILL and a second one started: `make test-slow`
async def test_kill_9_while_records_are_parked_and_being_released_joins_each_once(
    kafka: KafkaSettings, producer: Produce, test_env: dict[str, str], tmp_path: Path
) -> None:
    """Orders whose customer is missing are parked (committed with the partition's offset); the
    worker is killed with SIGKILL right as their customers arrive and releases are in flight. A
    new worker loads the parked changelog and joins each exactly once, none dead-lettered."""
    await fill_tables(producer)
    normal, late = 1000, 60
    await producer("orders", [(i, order(i)) for i in range(normal)])
    late_ids = range(normal, normal + late)
    await producer("orders", [(i, {**order(i), "customer_id": 9000 + i}) for i in late_ids])
    env = {**os.environ, **test_env, "GROUP_ID": unique("parkkill_"), "STATE_DIR": str(tmp_path / "state")}

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tests.materializer.kill_worker"], cwd=ROOT, env=env)

    loop = asyncio.get_running_loop()
    first = spawn()
    try:
        deadline = loop.time() + 90
        while await _output_progress(kafka) < normal:
            assert first.poll() is None, "worker exited"
            assert loop.time() < deadline, "no progress"
            await asyncio.sleep(0.2)
        await producer("customers", [(9000 + i, {"id": 9000 + i, "name": f"Late {i}"}) for i in late_ids])
        await _wait_for_a_release(kafka, normal, deadline)  # the first releases are being written
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    second = spawn()
    try:
        out = await read_committed(kafka, "orders_created", min_count=normal + late, timeout=120)
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    assert_each_once(out, normal + late)
    assert {o["customer_name"] for o in out if o["id"] >= normal} == {f"Late {i}" for i in late_ids}
    assert await read_committed(kafka, "materializer_dead_letters") == []
