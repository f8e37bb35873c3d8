"""Parking on the real broker: a record whose row is missing holds only its own key, survives a
move to another worker, and is joined or dead-lettered by its time; live and backlog runs agree."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kafka_integration import KafkaSettings
from materializer import Materializer, Source
from tests.materializer.conftest import read_committed
from tests.materializer.topologies import seed_topology
from tests.support import PATIENCE, unique, wait_until

pytestmark = pytest.mark.usefixtures("seed_topics")

Produce = Callable[..., Awaitable[None]]
Start = Callable[..., Awaitable[Materializer]]

# The join wait (record time) of the order moved between workers: its customer is produced only
# after one worker has joined the hundred behind it, stopped, and the next has started and parked
# it again, a gap of wall time that grows with the machine's load. Far beyond that, so that the
# order is joined, never expired, on any machine (a wait that does expire is the next test's).
MOVED_ORDER_WAIT_SECONDS = 600.0


def order(id: int, customer: int = 10, org: int = 13) -> dict[str, Any]:
    return {"id": id, "po": f"PO-{id}", "organization_id": org, "customer_id": customer}


async def one_missing_then_a_hundred(producer: Produce, m: Materializer) -> None:
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("customers", [(10, {"id": 10, "name": "Known"})])
    await m.wait_caught_up(PATIENCE)
    await producer("orders", [(1, order(1, customer=77))], partition=0)
    await producer("orders", [(i, order(i)) for i in range(2, 102)], partition=0)


async def test_a_missing_customer_holds_only_its_order_and_is_joined_on_another_worker(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    handed: list[int] = []  # what the callback (the worker's email path) was given

    async def on_output(row: dict[str, Any], source: Source) -> None:
        handed.append(row["id"])

    topology = seed_topology(on_output=on_output)
    a = await start_materializer(topology, "a", join_wait_seconds=MOVED_ORDER_WAIT_SECONDS)
    await one_missing_then_a_hundred(producer, a)
    out = await read_committed(kafka, "orders_created", min_count=100)
    # the 100 came out, and were handed on, while the first is still parked, not behind it
    assert sorted(o["id"] for o in out) == list(range(2, 102)) and a.parked() == 1
    assert sorted(handed) == list(range(2, 102))  # every call counted: once each
    await a.stop()  # the parked order belongs to the partition: a new worker has it
    b = await start_materializer(topology, "b", join_wait_seconds=MOVED_ORDER_WAIT_SECONDS)

    async def parked_on_b() -> bool:
        return b.parked() == 1

    await wait_until(parked_on_b)
    await producer("customers", [(77, {"id": 77, "name": "Late"})])
    await read_committed(kafka, "orders_created", min_count=101)
    await b.wait_caught_up(PATIENCE, streams=True)  # every call and output there will be is made
    out = await read_committed(kafka, "orders_created")
    assert sorted(o["id"] for o in out) == list(range(1, 102))  # each once
    assert [o["customer_name"] for o in out if o["id"] == 1] == ["Late"]
    assert sorted(handed) == list(range(1, 102))  # the moved order once, none of the 100 again
    assert b.parked() == 0 and await read_committed(kafka, "materializer_dead_letters") == []


async def test_a_customer_that_never_comes_dead_letters_its_order_after_the_wait(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    m = await start_materializer(seed_topology(), join_wait_seconds=2.0)
    await one_missing_then_a_hundred(producer, m)
    [letter] = await read_committed(kafka, "materializer_dead_letters", min_count=1)
    assert letter["value"]["id"] == 1 and "customers_table" in letter["reason"] and "'77'" in letter["reason"]
    out = await read_committed(kafka, "orders_created", min_count=100)
    assert sorted(o["id"] for o in out) == list(range(2, 102)) and m.parked() == 0


async def test_live_and_backlog_runs_give_the_same_outputs(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    rng = random.Random(7)
    live = await start_materializer(
        seed_topology(to_topic="live_out"),
        "live",
        group_id=unique("live_"),
        join_wait_seconds=1.0,
        dead_letter_topic="live_dead",
    )
    await live.wait_caught_up(PATIENCE)
    orders = 0
    for i in range(160):  # produced one at a time, rows often a moment after their orders
        roll = rng.random()
        if roll < 0.3:
            key = rng.randint(1, 8)
            await producer("customers", [(key, {"id": key, "name": rng.choice([None, f"c{key}-{i}"])})])
        elif roll < 0.4:
            key = rng.randint(1, 3)
            await producer("organizations", [(key, {"id": key, "name": f"o{key}-{i}"})])
        elif roll < 0.48:
            await producer(rng.choice(["customers", "organizations"]), [(rng.randint(1, 8), None)])
        else:
            orders += 1
            o = order(i, customer=rng.randint(1, 9), org=rng.randint(1, 3))
            await producer("orders", [(rng.randint(1, 12), o)])
        await asyncio.sleep(rng.choice([0.003, 0.003, 0.02, 0.3]))  # distinct times, some gaps
    await live.wait_caught_up(PATIENCE, streams=True)
    backlog = await start_materializer(
        seed_topology(to_topic="backlog_out"),
        "backlog",
        group_id=unique("backlog_"),
        join_wait_seconds=1.0,
        dead_letter_topic="backlog_dead",
    )
    for m in (live, backlog):
        await m.wait_caught_up(PATIENCE, streams=True)

    async def settled() -> bool:
        return live.parked() == 0 and backlog.parked() == 0

    await wait_until(settled)
    results = []
    for out, dead in (("live_out", "live_dead"), ("backlog_out", "backlog_dead")):
        joined = {
            o["id"]: {k: v for k, v in o.items() if not k.startswith("_")}
            for o in await read_committed(kafka, out)
        }
        refused = {d["value"]["id"]: d["reason"] for d in await read_committed(kafka, dead)}
        assert len(joined) + len(refused) == orders
        results.append((joined, refused))
    assert results[0] == results[1]
    assert results[0][0] and results[0][1]  # both joins and dead letters happened
