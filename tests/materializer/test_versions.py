"""Versioned tables and parking on the offline engine, over both state backends: a record of time T
joins each table's version as of T; one whose row is missing is parked with its key only."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kafka_integration import KafkaSettings
from materializer import MaterializerSettings, MemoryState, OfflineMaterializer, RocksState, Store
from materializer.errors import TopologyError
from materializer.state import History
from tests.materializer.topologies import seed_topology


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryState() if request.param == "memory" else RocksState(tmp_path / "state")
    yield s
    s.close()


def order(id: int, customer: int = 10, org: int = 13) -> dict[str, Any]:
    return {"id": id, "po": f"PO-{id}", "organization_id": org, "customer_id": customer}


async def test_a_late_processed_order_joins_the_versions_of_its_time(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13, timestamp=0)
    await m.feed("customers", {"id": 10, "name": "A", "email": "a@x"}, key=10, timestamp=1000)
    await m.feed("customers", {"id": 10, "name": "B"}, key=10, timestamp=3000)
    await m.feed("customers", None, key=10, timestamp=5000)
    # processed after all of that (a backlog): each order sees the customer of its own time
    await m.feed("orders", order(1), key=1, timestamp=2000)
    await m.feed("orders", order(2), key=2, timestamp=3000)
    await m.feed("orders", order(3), key=3, timestamp=4999)
    out = m.outputs_of("orders_created")
    assert [(o["id"], o["customer_name"], o["email"]) for o in out] == [
        (1, "A", "a@x"),
        (2, "B", "a@x"),
        (3, "B", "a@x"),
    ]
    assert m.table("customers_table").get(10) is None  # pull queries read the latest version
    assert m.dead_letters == [] and m.older_than_retention == 0


async def test_an_order_placed_before_its_customer_existed_waits_for_it(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store, join_wait_seconds=30)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13, timestamp=0)
    await m.feed("customers", {"id": 10, "name": "New"}, key=10, timestamp=10_000)
    await m.feed("customers", {"id": 10, "name": "Renamed"}, key=10, timestamp=20_000)
    await m.feed("orders", order(1), key=1, timestamp=5_000)  # customer created 5 s after the order
    await m.feed("orders", order(2), key=2, timestamp=-30_000)  # 40 s before: past the wait
    [out] = m.outputs_of("orders_created")
    assert out["id"] == 1 and out["customer_name"] == "New"  # as of the time the row appeared
    [letter] = m.dead_letters
    assert letter.as_dict()["value"]["id"] == 2 and "within 30s" in letter.reason


async def test_versions_older_than_the_retention_are_pruned_and_counted(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store, retention_ms=10_000)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13, timestamp=0)
    for i in range(200):
        await m.feed("customers", {"id": 10, "name": f"v{i}"}, key=10, timestamp=i * 1000)
    history = store.history("customers_table", "10")
    assert history is not None and history.pruned
    assert 10 <= len(history.versions) <= 12  # bounded by the retention, not by the updates
    await m.feed("orders", order(1), key=1, timestamp=195_500)
    await m.feed("orders", order(2), key=2, timestamp=5_000)  # older than the versions kept
    out = m.outputs_of("orders_created")
    assert [o["customer_name"] for o in out] == ["v195", f"v{history.versions[0][0] // 1000}"]
    assert m.older_than_retention == 1


async def test_a_deleted_key_is_forgotten_once_the_retention_passed(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store, retention_ms=10_000)
    await m.feed("customers", {"id": 10, "name": "gone"}, key=10, timestamp=0)
    await m.feed("customers", None, key=10, timestamp=1000)
    assert store.history("customers_table", "10") is not None
    await m.feed("customers", {"id": 11, "name": "x"}, key=11, timestamp=60_000)

    assert store.history("customers_table", "10") is None


def test_history_as_of_and_times() -> None:
    h = History()
    for ts, name in [(30, "c"), (10, "a"), (20, "b"), (20, "b2")]:
        h.add(ts, {"name": name}, boundary=-1)
    assert [v[0] for v in h.versions] == [10, 20, 30]
    assert h.as_of(5) == (None, False)
    assert h.as_of(20) == ({"name": "b2"}, False)
    assert h.as_of(99) == ({"name": "c"}, False)
    assert h.times(10, 30) == [20, 30]
    h.add(40, None, boundary=25)
    assert [v[0] for v in h.versions] == [20, 30, 40] and h.pruned
    assert h.as_of(5) == ({"name": "b2"}, True)
    assert History.decode(h.encode()).versions == h.versions


async def test_a_missing_customer_holds_only_its_own_order(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store, join_wait_seconds=30)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "Known"}, key=10)
    await m.feed("orders", order(1, customer=7), key=1)
    for i in range(2, 102):
        await m.feed("orders", order(i), key=i)
    assert [o["id"] for o in m.outputs_of("orders_created")] == list(range(2, 102))
    assert m.waiting() == 1
    await m.advance(12)
    await m.feed("customers", {"id": 7, "name": "Late"}, key=7)
    assert m.outputs_of("orders_created")[-1]["id"] == 1 and m.waiting() == 0
    assert m.dead_letters == []


async def test_later_records_of_a_parked_key_queue_behind_it(store: Store) -> None:
    m = OfflineMaterializer(seed_topology(), state=store, join_wait_seconds=30)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "Known"}, key=10)
    await m.feed("orders", order(1, customer=7), key="k")
    await m.feed("orders", order(2), key="k")  # joinable, but its key waits
    await m.feed("orders", order(3), key="other")
    assert [o["id"] for o in m.outputs_of("orders_created")] == [3] and m.waiting() == 2
    await m.advance(31)  # order 1 expires; order 2 follows it out, in key order
    assert [o["id"] for o in m.outputs_of("orders_created")] == [3, 2]
    [letter] = m.dead_letters
    assert letter.as_dict()["value"]["id"] == 1


def _events(seed: int) -> list[tuple[str, int, Any, int]]:
    """(topic, key, value, timestamp ms) in time order: creates, updates with nulls, deletes and
    orders referencing live, deleted, future and unknown ids."""
    rng = random.Random(seed)
    out: list[tuple[str, int, Any, int]] = []
    t = 0
    for i in range(300):
        t += rng.randint(0, 3000)
        roll = rng.random()
        if roll < 0.15:
            key = rng.randint(1, 6)
            out.append(("organizations", key, {"id": key, "name": f"o{key}-{i}"}, t))
        elif roll < 0.35:
            key = rng.randint(1, 12)
            email = rng.choice([None, f"{i}@x"])
            row = {"id": key, "name": rng.choice([None, f"c{key}-{i}"]), "email": email}
            out.append(("customers", key, row, t))
        elif roll < 0.42:
            out.append((rng.choice(["customers", "organizations"]), rng.randint(1, 12), None, t))
        else:
            o = order(i, customer=rng.randint(1, 14), org=rng.randint(1, 7))
            out.append(("orders", rng.randint(1, 20), o, t))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["inner", "left"])
async def test_live_and_backlog_runs_give_the_same_outputs(seed: int, kind: Any) -> None:
    events = _events(seed)

    async def run(backlog: bool) -> tuple[dict[int, Any], set[int]]:
        m = OfflineMaterializer(seed_topology(kind=kind), join_wait_seconds=10)
        ordered = sorted(events, key=lambda e: e[0] == "orders") if backlog else events
        for topic, key, value, ts in ordered:
            if not backlog:
                await m.advance(ts / 1000 - m.now)
            await m.feed(topic, value, key=key, timestamp=ts)
        await m.advance(10_000)
        outs = {o.value["id"]: o.value for o in m.outputs}
        dead = {d.as_dict()["value"]["id"] for d in m.dead_letters}
        assert m.waiting() == 0
        return outs, dead

    live, backlog = await run(False), await run(True)
    assert live == backlog
    assert len(live[0]) + len(live[1]) == sum(1 for e in events if e[0] == "orders")


async def test_a_cache_smaller_than_the_tables_gives_the_same_joins(tmp_path: Path) -> None:
    """Histories cached as written, evicted and read back from RocksDB: the same outputs as in
    memory, with more keys (and versions) than the cache holds."""
    events = _events(4)

    async def run(store: Store) -> list[Any]:
        m = OfflineMaterializer(seed_topology(), state=store, join_wait_seconds=10)
        for topic, key, value, ts in events:
            await m.feed(topic, value, key=key, timestamp=ts)
        await m.advance(10_000)
        store.close()
        return [o.value for o in m.outputs] + [d.reason for d in m.dead_letters]

    small = await run(RocksState(tmp_path / "small", cache_keys=2))
    assert small == await run(MemoryState()) and small


def test_a_cache_of_no_keys_is_refused() -> None:
    with pytest.raises(TopologyError, match="cache_keys"):
        MaterializerSettings(kafka=KafkaSettings.from_env({}, client_id="t"), cache_keys=0)
