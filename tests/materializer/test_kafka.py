"""The materializer against the real broker: the issue's acceptance list."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kafka_integration import KafkaSettings
from materializer import Materializer, NotStarted, Source, Topology
from tests.materializer.conftest import read_committed
from tests.materializer.topologies import seed_topology
from tests.support import PATIENCE, wait_until

pytestmark = pytest.mark.usefixtures("seed_topics")

Produce = Callable[..., Awaitable[None]]
Start = Callable[..., Awaitable[Materializer]]


def order(id: int, customer: int = 10, org: int = 13, **extra: Any) -> dict[str, Any]:
    return {"id": id, "po": f"PO-{id}", "organization_id": org, "customer_id": customer, **extra}


async def test_seed_diagram_customer_renamed_from_a_to_b(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    m = await start_materializer(seed_topology())
    await producer("organizations", [(13, {"id": 13, "name": "SuperCompany"})])
    await producer(
        "customers", [(10, {"id": 10, "name": "A", "last_name": "L", "email": "a@x", "action": "created"})]
    )
    await producer("orders", [(1, order(1))])
    first = await read_committed(kafka, "orders_created", min_count=1)
    assert [o["customer_name"] for o in first] == ["A"]
    await producer("customers", [(10, {"id": 10, "name": "B", "action": "updated"})])
    await producer("orders", [(2, order(2))])
    out = await read_committed(kafka, "orders_created", min_count=2)
    by_id = {o["id"]: o for o in out}
    assert by_id[1]["customer_name"] == "A" and by_id[2]["customer_name"] == "B"
    assert by_id[2]["organization_name"] == "SuperCompany" and by_id[2]["_key"] == "2"
    assert len(out) == 2
    await m.wait_caught_up(PATIENCE)
    assert m.table("customers_table").get("10")["name"] == "B"  # type: ignore[index]
    assert m.table("customer_created").get("10") is None  # action is now 'updated'


async def test_using_before_start_raises_not_started(settings_for: Callable[..., Any]) -> None:
    m = Materializer(seed_topology(), settings_for())
    with pytest.raises(NotStarted):
        m.table("customers_table")
    with pytest.raises(NotStarted):
        await m.wait_caught_up()


async def test_customer_created_just_before_its_order_is_always_joined(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    # join_wait_seconds=0: a row missing at join time is dead-lettered at once, so every output
    # proves the tables were caught up to the order's time before the join.
    m = await start_materializer(seed_topology(), join_wait_seconds=0.0)
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await m.wait_caught_up(PATIENCE)
    pairs = 150

    async def pair(i: int) -> None:
        await producer("customers", [(1000 + i, {"id": 1000 + i, "name": f"C{i}", "action": "created"})])
        await producer("orders", [(i, order(i, customer=1000 + i))])

    await asyncio.gather(*(pair(i) for i in range(pairs)))
    out = await read_committed(kafka, "orders_created", min_count=pairs, timeout=60)
    assert sorted(o["id"] for o in out) == list(range(pairs))
    assert all(o["customer_name"] == f"C{o['id']}" for o in out)
    assert len({o["_partition"] for o in out}) > 1
    assert m.dead_letters == 0


async def test_nulls_tombstones_and_filters_on_the_broker(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    m = await start_materializer(seed_topology())
    await producer(
        "customers",
        [
            (1, {"id": 1, "name": "A", "email": "a@x", "action": "created"}),
            (1, {"id": 1, "name": None, "email": None, "last_name": "Z", "action": "updated"}),
            (2, {"id": 2, "name": "B", "action": "created"}),
            (3, {"id": 3, "name": "C", "action": "created"}),
            (3, None),
        ],
    )
    await m.wait_caught_up(PATIENCE)
    table = m.table("customers_table")
    assert table.get(1) == {"id": 1, "name": "A", "last_name": "Z", "email": "a@x", "action": "updated"}
    assert table.get(3) is None and len(table) == 2
    assert sorted(dict(m.table("customer_created").items())) == ["2"]


async def test_left_vs_inner_when_the_row_never_arrives(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    topo = Topology()
    custs = topo.table("people_table", topic="customers", columns=("name",))
    stream = topo.stream("s", topic="orders", columns=("id", "customer_id"))
    from materializer import Join

    topo.join("inner_out", stream=stream, joins=[Join(custs, on="customer_id")], to_topic="inner_out")
    topo.join(
        "left_out", stream=stream, joins=[Join(custs, on="customer_id", kind="left")], to_topic="left_out"
    )
    m = await start_materializer(topo, join_wait_seconds=1.5)
    await producer("customers", [(10, {"name": "Here"})])
    await producer("orders", [(1, order(1, customer=404)), (2, order(2, customer=10))], partition=0)
    left = await read_committed(kafka, "left_out", min_count=2)
    inner = await read_committed(kafka, "inner_out", min_count=1)
    assert sorted((o["id"], o["name"]) for o in left) == [(1, None), (2, "Here")]  # keys 1, 2: two partitions
    assert [(o["id"], o["name"]) for o in inner] == [(2, "Here")]
    [letter] = await read_committed(kafka, "materializer_dead_letters", min_count=1)
    assert (
        letter["name"] == "inner_out" and "people_table" in letter["reason"] and "'404'" in letter["reason"]
    )
    assert letter["topic"] == "orders" and letter["partition"] == 0 and letter["offset"] == 0
    assert letter["value"]["customer_id"] == 404
    assert m.dead_letters == 1


async def test_a_row_arriving_late_is_joined(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    m = await start_materializer(seed_topology(), join_wait_seconds=30.0)
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("orders", [(1, order(1, customer=77))])
    await wait_until(_waiting_on(m))
    await producer("customers", [(77, {"id": 77, "name": "Late"})])
    [out] = await read_committed(kafka, "orders_created", min_count=1)
    assert out["customer_name"] == "Late"
    assert m.dead_letters == 0


def _waiting_on(m: Materializer) -> Callable[[], Awaitable[bool]]:
    """The order was read and parked: it waits for its row (and only it: it is handled, counted in
    records_in, and its partition goes on)."""

    async def order_parked() -> bool:
        return m.parked() == 1 and m.records_in == 1

    return order_parked


async def test_poison_records_are_dead_lettered_and_processing_goes_on(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    m = await start_materializer(seed_topology())
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer(
        "customers", [(10, {"id": 10, "name": "C"}), (11, b"{broken"), (12, {"id": 12, "name": [1]})]
    )
    await producer(
        "orders",
        [
            (1, b"not json"),
            (2, b"[1,2,3]"),
            (3, {"id": "three", "po": "x", "organization_id": 13, "customer_id": 10}),
            (4, order(4)),
        ],
        partition=0,
    )
    [out] = await read_committed(kafka, "orders_created", min_count=1)
    assert out["id"] == 4
    letters = await read_committed(kafka, "materializer_dead_letters", min_count=5)
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(letters) == 5, reasons
    assert sum("not JSON" in r for r in reasons) == 2
    assert any("not an object" in r for r in reasons) and any("column 'id'" in r for r in reasons)
    assert any("column 'name'" in r for r in reasons)
    assert m.table("customers_table").get(10) is not None and m.table("customers_table").get(11) is None


async def test_rebuild_after_deleting_the_state_folder_gives_the_same_tables(
    kafka: KafkaSettings, producer: Produce, settings_for: Callable[..., Any]
) -> None:
    await producer("organizations", [(i, {"id": i, "name": f"O{i}"}) for i in range(50)])
    await producer(
        "customers",
        [
            (i % 400, {"id": i % 400, "name": f"N{i}", "email": None if i % 3 else f"{i}@x"})
            for i in range(1200)
        ]
        + [(i, None) for i in range(0, 400, 7)],
    )
    settings = settings_for()
    topo = seed_topology()

    async def snapshot(m: Materializer) -> dict[str, Any]:
        await m.wait_caught_up(PATIENCE)
        return {name: dict(m.table(name).items()) for name in ("organizations_table", "customers_table")}

    async with Materializer(topo, settings) as m:
        first = await snapshot(m)
    assert (
        len(first["customers_table"]) == 400 - len(range(0, 400, 7))
        and len(first["organizations_table"]) == 50
    )

    async with Materializer(topo, settings) as m:  # restart: resumes from the stored offsets
        assert await snapshot(m) == first and m.table_records_in == 0 and not m.rebuilt

    shutil.rmtree(settings.state_dir)
    async with Materializer(topo, settings) as m:
        assert await snapshot(m) == first and m.table_records_in == 1200 + 50 + len(range(0, 400, 7))


async def test_on_output_gets_each_record_with_its_source(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    seen: list[tuple[int, Source]] = []

    async def deliver(output: dict[str, Any], source: Source) -> None:
        seen.append((output["id"], source))

    m = await start_materializer(seed_topology(on_output=deliver, to_topic=None))
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("customers", [(10, {"id": 10, "name": "C"})])
    await producer("orders", [(i, order(i)) for i in range(20)], partition=1)

    async def all_seen() -> bool:
        return len(seen) >= 20

    await wait_until(all_seen)
    # committed to the end: every call there will be has been made (a repeat counts, and fails)
    await m.wait_caught_up(PATIENCE, streams=True)
    assert [i for i, _ in seen] == list(range(20))  # in partition order
    assert [s.offset for _, s in seen] == list(range(20))
    assert {(s.topic, s.partition) for _, s in seen} == {("orders", 1)}


async def test_concurrent_callbacks_keep_each_keys_order_and_all_return_before_their_commit(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    """With handler_concurrency, the calls of a partition's records overlap, never two of one key;
    each key's calls come in offset order; each record is called once (no failure: no repeat)."""
    running: dict[str, int] = {}
    most = 0
    seen: dict[str, list[int]] = {}
    overlapping_key: list[str] = []

    async def deliver(output: dict[str, Any], source: Source) -> None:
        nonlocal most
        key = str(source.key)
        if running.get(key):
            overlapping_key.append(key)
        running[key] = running.get(key, 0) + 1
        most = max(most, sum(running.values()))
        # long enough for the next records' calls to start meanwhile; the last record's call
        # outlives the commit interval (0.2 s), so a commit that did not wait for it would be seen
        await asyncio.sleep(0.02 if source.offset < 59 else 1.0)
        if source.offset == 59:
            uncommitted.append((await m.partition_lag())[("orders", 1)])
        seen.setdefault(key, []).append(source.offset)
        running[key] -= 1

    uncommitted: list[int] = []  # records of partition 1 not committed, as the last call returns
    m = await start_materializer(seed_topology(on_output=deliver, to_topic=None), handler_concurrency=64)
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("customers", [(10, {"id": 10, "name": "C"})])
    await producer("orders", [(i % 5, order(i)) for i in range(60)], partition=1)

    async def all_seen() -> bool:
        return sum(len(offsets) for offsets in seen.values()) >= 60

    await wait_until(all_seen)
    await m.wait_caught_up(PATIENCE, streams=True)  # committed to the end: no call is left to come
    assert overlapping_key == [] and most > 1
    assert uncommitted and uncommitted[0] >= 1  # offset 59 was not committed while its call ran
    assert sorted(seen) == ["0", "1", "2", "3", "4"]
    assert all(offsets == sorted(offsets) and len(offsets) == 12 for offsets in seen.values())
    assert sorted(o for offsets in seen.values() for o in offsets) == list(range(60))


async def test_memory_state_rebuilds_on_each_start(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start
) -> None:
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("customers", [(10, {"id": 10, "name": "C"})])
    first = await start_materializer(seed_topology(), "x", state="memory")
    await first.wait_caught_up(PATIENCE)
    assert first.table("organizations_table").get(13) == {"id": 13, "name": "Org"}
    await first.stop()
    second = await start_materializer(seed_topology(), "x", state="memory")
    await second.wait_caught_up(PATIENCE)
    assert second.table_records_in == 2 and len(second.table("customers_table")) == 1


@pytest.mark.parametrize("concurrency", [1, 64])
async def test_a_failing_callback_is_retried_and_the_topic_output_stays_exactly_once(
    kafka: KafkaSettings, producer: Produce, start_materializer: Start, concurrency: int
) -> None:
    seen: list[int] = []
    failed: list[int] = []

    async def flaky(output: dict[str, Any], source: Source) -> None:
        if output["id"] == 7 and not failed:
            failed.append(7)
            raise RuntimeError("the mail server is down")
        seen.append(output["id"])

    m = await start_materializer(seed_topology(on_output=flaky), handler_concurrency=concurrency)
    await producer("organizations", [(13, {"id": 13, "name": "Org"})])
    await producer("customers", [(10, {"id": 10, "name": "C"})])
    await producer("orders", [(i, order(i)) for i in range(15)], partition=2)
    await read_committed(kafka, "orders_created", min_count=15)

    async def all_seen() -> bool:
        return set(seen) == set(range(15))

    await wait_until(all_seen)
    await m.wait_caught_up(PATIENCE, streams=True)  # every call and output there will be is made
    out = await read_committed(kafka, "orders_created")  # read again: a repeat counts, and fails
    assert failed == [7]
    assert sorted(o["id"] for o in out) == list(range(15))  # the aborted transaction left nothing
    assert seen[-8:] == list(range(7, 15))  # redelivered from the committed offset, in order
    assert m.records_in >= 15


async def test_start_with_kafka_unreachable_serves_the_stored_tables(
    kafka: KafkaSettings, producer: Produce, settings_for: Callable[..., Any]
) -> None:
    await producer("customers", [(10, {"id": 10, "name": "Stored"})])
    settings = settings_for()
    async with Materializer(seed_topology(), settings) as m:
        await m.wait_caught_up(PATIENCE)
    import dataclasses

    down = dataclasses.replace(settings, kafka=dataclasses.replace(kafka, bootstrap_servers="127.0.0.1:1"))
    m = Materializer(seed_topology(), down)
    await m.start()  # does not raise: it keeps trying in the background
    try:
        assert not m.connected()
        assert m.table("customers_table").get(10) == {
            "id": 10,
            "name": "Stored",
            "last_name": None,
            "email": None,
            "action": None,
        }
        with pytest.raises(TimeoutError):
            await m.wait_caught_up(0.5)
    finally:
        await m.stop()
