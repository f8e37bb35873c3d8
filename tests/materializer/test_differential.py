"""Differential test: the materializer against Kafka Streams with versioned tables (the reference).

A seeded sequence of organizations and customers created, updated with null columns and deleted,
and orders referencing live, deleted, future and never-created ids, is produced to real topics
with explicit, strictly increasing timestamps. Kafka Streams 4.1 (`infra/streams-reference/`,
versioned stores, INNER and LEFT joins to both tables) and two materializers (join wait 0 and W)
read it. Per order:
- with no wait, the materializer's INNER and LEFT outputs equal the reference's;
- with the wait W, the materializer emits, in addition, exactly the orders for which there is a
  time in (T, T + W] at which every row they join exists (INNER: an extra output; LEFT: values
  instead of nulls); every other order is as the reference has it.
Any difference prints the inputs behind it.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from kafka_integration import KafkaSettings, TopicSpec, ensure_topics
from materializer import Join, Materializer, Topology
from tests.materializer.conftest import read_committed
from tests.support import ROOT, unique, wait_until

REFERENCE = ROOT / "infra" / "streams-reference"
WAIT_SECONDS = 3.0
FIELDS = ("organization_name", "customer_name", "customer_last_name", "email")

Event = tuple[str, int, dict[str, Any] | None, int]  # topic, key, value (None: tombstone), time ms
Start = Callable[..., Awaitable[Materializer]]


@pytest.fixture(scope="session")
def reference_engine() -> Path:
    subprocess.run(["bash", str(REFERENCE / "build.sh")], check=True, cwd=ROOT)
    return REFERENCE


def generate(seed: int, count: int = 240) -> list[Event]:
    rng = random.Random(seed)
    t = int(time.time() * 1000) - 600_000  # ten minutes ago: well within the tables' retention
    out: list[Event] = []
    for i in range(count):
        t += rng.randint(1, 600)  # strictly increasing: no two records share a time
        roll = rng.random()
        if roll < 0.12:
            key = rng.randint(1, 5)
            out.append(("organizations", key, {"id": key, "name": rng.choice([None, f"org{key}-{i}"])}, t))
        elif roll < 0.32:
            key = rng.randint(1, 10)
            row = {
                "id": key,
                "name": rng.choice([None, f"c{key}-{i}"]),
                "last_name": rng.choice([None, f"l{i}"]),
                "email": rng.choice([None, f"{i}@x"]),
            }
            out.append(("customers", key, row, t))
        elif roll < 0.40:
            out.append((rng.choice(["customers", "organizations"]), rng.randint(1, 10), None, t))
        else:  # ids up to 6 and 12: some are never created
            org, customer = rng.randint(1, 6), rng.randint(1, 12)
            order = {"id": i, "po": f"PO-{i}", "organization_id": org, "customer_id": customer}
            out.append(("orders", i, order, t))
    return out


def exists(events: list[Event], topic: str, key: int, at: int) -> bool:
    state = False
    for t, k, value, ts in events:
        if ts > at:
            break
        if t == topic and k == key:
            state = value is not None
    return state


def joinable_within(events: list[Event], order: dict[str, Any], start: int, wait_ms: int) -> bool:
    """Whether there is a time in (start, start + wait] at which both rows of the order exist."""
    keys = [("organizations", order["organization_id"]), ("customers", order["customer_id"])]
    times = [ts for t, k, _, ts in events if (t, k) in keys and start < ts <= start + wait_ms]
    return any(all(exists(events, t, k, at) for t, k in keys) for at in times)


def inputs_behind(events: list[Event], order_id: int) -> str:
    [(_, _, order, ts)] = [e for e in events if e[0] == "orders" and e[1] == order_id]
    assert order is not None
    keys = {("organizations", order["organization_id"]), ("customers", order["customer_id"])}
    lines = [f"order {order} at {ts}"] + [
        f"  {t}[{k}] = {v} at {at} ({at - ts:+d} ms)" for t, k, v, at in events if (t, k) in keys
    ]
    return "\n".join(lines)


def topology(suffix: str) -> Topology:
    topo = Topology()
    orgs = topo.table("organizations_table", topic="organizations", columns=("id", "name"))
    custs = topo.table("customers_table", topic="customers", columns=("id", "name", "last_name", "email"))
    orders = topo.stream(
        "orders_stream",
        topic="orders",
        columns={"id": int, "po": str, "organization_id": int, "customer_id": int},
    )
    for kind in ("inner", "left"):
        topo.join(
            f"{kind}_{suffix}",
            stream=orders,
            joins=[
                Join(orgs, on="organization_id", kind=kind, columns={"organization_name": "name"}),  # type: ignore[arg-type]
                Join(
                    custs,
                    on="customer_id",
                    kind=kind,  # type: ignore[arg-type]
                    columns={"customer_name": "name", "customer_last_name": "last_name", "email": "email"},
                ),
            ],
            to_topic=f"mat_{kind}_{suffix}",
        )
    return topo


async def produce(kafka: KafkaSettings, events: list[Event]) -> None:
    producer = AIOKafkaProducer(**kafka.client_kwargs(), enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                kafka.topic(topic),
                None if value is None else orjson.dumps(value),
                key=str(key).encode(),
                timestamp_ms=ts,
            )
            for topic, key, value, ts in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.fixture
def reference(reference_engine: Path, kafka: KafkaSettings, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Starts the reference application on the test's topics; returns its application id. Its
    log is in the test's tmp_path/streams.log."""
    started: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "streams.log").open("wb")

    def start() -> str:
        app_id = unique("ref_")
        process = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",  # a short run on two busy cores: start fast
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp",
                f"{reference_engine / 'libs'}/*:{reference_engine / 'classes'}",
                "Reference",
                kafka.bootstrap_servers,
                kafka.topic(""),
                app_id,
                str(tmp_path / "streams"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        started.append(process)
        return app_id

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


async def reference_done(kafka: KafkaSettings, app_id: str, topics: int) -> bool:
    """The reference has committed every partition of its inputs and repartition topics to their end."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    consumer = AIOKafkaConsumer(**kafka.client_kwargs())
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(app_id)
        if len({tp.topic for tp in committed}) < topics:
            return False
        end = await consumer.end_offsets(list(committed))
        return all(committed[tp].offset >= end[tp] for tp in committed)
    finally:
        await consumer.stop()
        await admin.close()


def by_order(records: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    return {r["id"]: tuple(r.get(f) for f in FIELDS) for r in records}


@pytest.mark.parametrize(("seed", "partitions"), [(1, 1), (2, 3), (3, 3)])
async def test_materializer_agrees_with_kafka_streams_versioned_joins(
    kafka: KafkaSettings, reference: Callable[[], str], start_materializer: Start, seed: int, partitions: int
) -> None:
    names = ["organizations", "customers", "orders", "ref_inner", "ref_left"]
    names += [f"mat_{k}_{s}" for k in ("inner", "left") for s in ("now", "wait")]
    await ensure_topics(kafka, [TopicSpec(n, partitions=partitions, compacted=False) for n in names])
    events = generate(seed)
    orders = {key: (value, ts) for topic, key, value, ts in events if topic == "orders" and value is not None}
    await produce(kafka, events)

    app_id = reference()
    now = await start_materializer(topology("now"), "now", group_id=unique("now_"), join_wait_seconds=0.0)
    wait = await start_materializer(
        topology("wait"), "wait", group_id=unique("wait_"), join_wait_seconds=WAIT_SECONDS
    )
    for m in (now, wait):
        await m.wait_caught_up(120, streams=True)

    async def nothing_parked() -> bool:
        return now.parked() == 0 and wait.parked() == 0

    await wait_until(nothing_parked)

    async def reference_finished() -> bool:  # 3 inputs and 4 repartition topics
        return await reference_done(kafka, app_id, 7)

    await wait_until(reference_finished, timeout=120, interval=0.5)

    ref_inner = by_order(await read_committed(kafka, "ref_inner"))
    ref_left = by_order(await read_committed(kafka, "ref_left", min_count=len(orders)))
    now_inner = by_order(await read_committed(kafka, "mat_inner_now"))
    now_left = by_order(await read_committed(kafka, "mat_left_now", min_count=len(orders)))
    wait_inner = by_order(await read_committed(kafka, "mat_inner_wait"))
    wait_left = by_order(await read_committed(kafka, "mat_left_wait", min_count=len(orders)))
    assert len(ref_left) == len(orders) and ref_inner and len(ref_inner) < len(orders)

    problems = []
    late_orders = 0
    for order_id, (order, ts) in sorted(orders.items()):
        late = order_id not in ref_inner and joinable_within(events, order, ts, int(WAIT_SECONDS * 1000))
        late_orders += late
        checks = [
            ("INNER, no wait", now_inner.get(order_id), ref_inner.get(order_id)),
            ("LEFT, no wait", now_left.get(order_id), ref_left.get(order_id)),
        ]
        if late:
            checks.append(("INNER, wait: emitted as its row came", order_id in wait_inner, True))
            checks.append(("LEFT, wait: same as INNER", wait_left.get(order_id), wait_inner.get(order_id)))
        else:
            checks.append(("INNER, wait", wait_inner.get(order_id), ref_inner.get(order_id)))
            checks.append(("LEFT, wait", wait_left.get(order_id), ref_left.get(order_id)))
        for what, got, expected in checks:
            if got != expected:
                behind = inputs_behind(events, order_id)
                problems.append(f"{what}: materializer {got}, expected {expected}\n{behind}")
    assert not problems, f"seed {seed}, {partitions} partitions:\n" + "\n".join(problems)
    assert late_orders > 0 and len(wait_inner) == len(ref_inner) + late_orders  # the wait was exercised
