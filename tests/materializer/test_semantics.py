"""The semantics of tables and joins on the offline engine, over both state backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from materializer import (
    Join,
    MemoryState,
    OfflineMaterializer,
    RocksState,
    Source,
    Store,
    Topology,
    TopologyError,
    UnknownTable,
)
from tests.materializer.topologies import seed_topology, seed_topology_sql

Seed = Callable[..., Topology]


@pytest.fixture(params=["python", "sql"])
def seed(request: pytest.FixtureRequest) -> Seed:
    """The seed's topology declared with Python calls or with ksqlDB's SQL: both must agree."""
    return seed_topology if request.param == "python" else seed_topology_sql


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryState() if request.param == "memory" else RocksState(tmp_path / "state")
    yield s
    s.close()


def offline(store: Store, seed: Seed, **kwargs: Any) -> OfflineMaterializer:
    topo_kwargs = {k: kwargs.pop(k) for k in ("kind", "on_output", "where_created") if k in kwargs}
    return OfflineMaterializer(seed(**topo_kwargs), state=store, **kwargs)


def order(id: int, customer: int = 10, org: int = 13, **extra: Any) -> dict[str, Any]:
    return {"id": id, "po": f"PO-{id}", "organization_id": org, "customer_id": customer, **extra}


async def test_seed_diagram_rename_gives_latest_name(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("organizations", {"id": 13, "name": "SuperCompany"}, key=13)
    await m.feed(
        "customers", {"id": 10, "name": "A", "last_name": "L", "email": "a@x", "action": "created"}, key=10
    )
    await m.feed("orders", order(1), key=1)
    await m.feed("customers", {"id": 10, "name": "B", "action": "updated"}, key=10)
    await m.feed("orders", order(2), key=2)
    out = m.outputs_of("orders_created")
    assert [o["customer_name"] for o in out] == ["A", "B"]
    assert out[1] == {
        "id": 2,
        "po": "PO-2",
        "organization_id": 13,
        "customer_id": 10,
        "action": None,
        "organization_name": "SuperCompany",
        "customer_name": "B",
        "customer_last_name": "L",
        "email": "a@x",
    }


async def test_nulls_are_ignored_latest_by_offset_per_column(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("customers", {"id": 1, "name": "A", "email": "a@x", "action": "created"}, key=1)
    await m.feed("customers", {"id": 1, "name": None, "email": "b@x"}, key=1)
    await m.feed("customers", {"id": 1, "last_name": "Z"}, key=1)
    assert m.table("customers_table").get("1") == {
        "id": 1,
        "name": "A",
        "last_name": "Z",
        "email": "b@x",
        "action": "created",
    }
    assert len(m.table("customers_table")) == 1


async def test_tombstone_deletes_the_row(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("customers", {"id": 1, "name": "A"}, key=1)
    await m.feed("customers", {"id": 2, "name": "B"}, key=2)
    await m.feed("customers", None, key=1)
    await m.feed("customers", None, key=99)  # deleting what does not exist is harmless
    table = m.table("customers_table")
    assert table.get(1) is None and "1" not in table
    assert dict(table.items()) == {
        "2": {"id": 2, "name": "B", "last_name": None, "email": None, "action": None}
    }
    assert len(table) == 1
    await m.feed("customers", {"id": 1, "name": "again"}, key=1)
    assert table.get(1) == {"id": 1, "name": "again", "last_name": None, "email": None, "action": None}


async def test_filtered_table_follows_the_latest_row(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("customers", {"id": 1, "name": "A", "action": "created"}, key=1)
    await m.feed("customers", {"id": 2, "name": "B", "action": "created"}, key=2)
    created = m.table("customer_created")
    assert sorted(created.keys()) == ["1", "2"]
    await m.feed("customers", {"id": 2, "action": "updated"}, key=2)
    assert created.get(2) is None and created.get(1) is not None
    assert len(created) == 1


async def test_late_row_is_joined_when_it_arrives(store: Store, seed: Seed) -> None:
    m = offline(store, seed, join_wait_seconds=30)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("orders", order(1, customer=7), key=1)
    await m.feed("orders", order(2, customer=8), key=2)  # same partition: waits behind order 1
    assert m.outputs == [] and m.waiting() == 2
    await m.advance(10)
    await m.feed("customers", {"id": 7, "name": "Late"}, key=7)
    await m.feed("customers", {"id": 8, "name": "Later"}, key=8)
    assert [o["customer_name"] for o in m.outputs_of("orders_created")] == ["Late", "Later"]
    assert m.dead_letters == []


async def test_row_that_never_arrives_is_dead_lettered_with_reason(store: Store, seed: Seed) -> None:
    m = offline(store, seed, join_wait_seconds=30)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "Here"}, key=10)
    await m.feed("orders", order(1, customer=404), key=1)
    await m.feed("orders", order(2), key=2)
    # order 1 is parked; order 2, another key, is not held behind it
    assert [o["id"] for o in m.outputs_of("orders_created")] == [2]
    await m.advance(29)
    assert m.dead_letters == [] and m.waiting() == 1
    await m.advance(1)
    assert [o["id"] for o in m.outputs_of("orders_created")] == [2]
    [letter] = m.dead_letters
    assert "customers_table" in letter.reason and "'404'" in letter.reason and "30s" in letter.reason
    body = letter.as_dict()
    assert body["value"]["id"] == 1 and body["topic"] == "orders" and body["offset"] == 0


async def test_left_join_emits_nulls_after_the_bound(store: Store, seed: Seed) -> None:
    m = offline(store, seed, kind="left", join_wait_seconds=5)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("orders", order(1, customer=404), key=1)
    assert m.outputs == []
    await m.advance(5)
    [out] = m.outputs_of("orders_created")
    assert out["organization_name"] == "Org" and out["customer_name"] is None and out["email"] is None
    assert m.dead_letters == []


async def test_left_join_without_wait_emits_at_once() -> None:
    topo = Topology()
    custs = topo.table("people", topic="people", columns=("name",))
    s = topo.stream("events", topic="events", columns=("person",))
    topo.join("enriched", stream=s, joins=[Join(custs, on="person", kind="left", wait=False)])
    m = OfflineMaterializer(topo)
    await m.feed("events", {"person": 1}, key=1)
    assert m.outputs_of("enriched") == [{"person": 1, "name": None}]


async def test_inner_join_with_a_missing_row_on_other_partition_does_not_block(
    store: Store, seed: Seed
) -> None:
    m = offline(store, seed)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "Here"}, key=10)
    await m.feed("orders", order(1, customer=404), key=1, partition=0)
    await m.feed("orders", order(2), key=2, partition=1)
    assert [o["id"] for o in m.outputs_of("orders_created")] == [2]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json{", "not JSON"),
        (b"[1, 2]", "not an object"),
        ('"text"', "not an object"),
        ({"id": "one", "po": "x", "organization_id": 13, "customer_id": 10}, "column 'id'"),
        ({"id": 1, "po": "x", "organization_id": {"a": 1}, "customer_id": 10}, "organization_id"),
        ({"id": 1, "po": "x", "organization_id": 13, "customer_id": True}, "boolean"),
    ],
)
async def test_poison_stream_records_are_dead_lettered_and_processing_goes_on(
    store: Store, value: Any, reason: str, seed: Seed
) -> None:
    m = offline(store, seed)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "C"}, key=10)
    await m.feed("orders", value, key=1)
    await m.feed("orders", order(2), key=2)
    [letter] = m.dead_letters
    assert reason in letter.reason
    assert [o["id"] for o in m.outputs_of("orders_created")] == [2]


async def test_poison_table_records_are_dead_lettered_and_the_table_goes_on(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("customers", b"\xff\xfe", key=1)
    await m.feed("customers", {"id": 2, "name": ["not", "scalar"]}, key=2)
    await m.feed("customers", {"id": 3, "name": "no key"})
    await m.feed("customers", {"id": 4, "name": "ok"}, key=4)
    reasons = [d.reason for d in m.dead_letters]
    assert (
        len(reasons) == 3 and "not JSON" in reasons[0] and "'name'" in reasons[1] and "no key" in reasons[2]
    )
    assert list(m.table("customers_table").keys()) == ["4"]


async def test_duplicate_and_replayed_deliveries_apply_once(store: Store, seed: Seed) -> None:
    m = offline(store, seed)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "A"}, key=10, offset=0)
    await m.feed("customers", {"id": 10, "name": "B"}, key=10, offset=1)
    await m.feed("customers", {"id": 10, "name": "A"}, key=10, offset=0)  # redelivered: ignored
    assert m.table("customers_table").get(10)["name"] == "B"  # type: ignore[index]
    await m.feed("orders", order(1), key=1, offset=0)
    await m.feed("orders", order(1), key=1, offset=0)
    assert len(m.outputs) == 1


async def test_where_filters_the_stream(store: Store, seed: Seed) -> None:
    m = offline(store, seed, where_created=True)
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "C"}, key=10)
    await m.feed("orders", order(1, action="updated"), key=1)
    await m.feed("orders", order(2, action="created"), key=2)
    assert [o["id"] for o in m.outputs_of("orders_created")] == [2]


async def test_on_output_receives_the_source(seed: Seed) -> None:
    seen: list[tuple[dict[str, Any], Source]] = []

    async def record(output: dict[str, Any], source: Source) -> None:
        seen.append((output, source))

    m = OfflineMaterializer(seed(on_output=record))
    await m.feed("organizations", {"id": 13, "name": "Org"}, key=13)
    await m.feed("customers", {"id": 10, "name": "C"}, key=10)
    await m.feed("orders", order(5), key=5, partition=2, timestamp=1234)
    [(output, source)] = seen
    assert output["id"] == 5 and source == Source("orders", 2, 0, 1234, "5")


async def test_rocks_state_survives_reopen(tmp_path: Path, seed: Seed) -> None:
    store = RocksState(tmp_path / "s")
    m = OfflineMaterializer(seed(), state=store)
    await m.feed("customers", {"id": 1, "name": "A"}, key=1)
    await m.feed("customers", {"id": 2, "name": "B"}, key=2)
    store.close()
    again = RocksState(tmp_path / "s")
    m2 = OfflineMaterializer(seed(), state=again)
    assert m2.table("customers_table").get(2)["name"] == "B"  # type: ignore[index]
    assert len(m2.table("customers_table")) == 2
    assert again.offsets() == {("customers", 0): 2}
    await m2.feed("customers", {"id": 1, "name": "stale"}, key=1, offset=0)  # already applied
    assert m2.table("customers_table").get(1)["name"] == "A"  # type: ignore[index]
    again.close()


def test_damaged_rocks_folder_is_started_empty(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = RocksState(path)
    store.set_fingerprint("x")
    store.close()
    for f in path.iterdir():
        if f.name.startswith("MANIFEST") or f.name == "CURRENT":
            f.write_bytes(b"garbage")
    again = RocksState(path)
    assert again.rebuilt and again.fingerprint() is None and again.offsets() == {}
    again.close()


def test_topology_rejects_bad_declarations() -> None:
    topo = Topology()
    t = topo.table("t", topic="t", columns=("a",))
    with pytest.raises(TopologyError):
        topo.table("t", topic="x", columns=("a",))
    with pytest.raises(TopologyError):
        Join(t, on="a", columns={"x": "missing"})
    with pytest.raises(TopologyError):
        topo.table("u", topic="u", columns="abc")
    with pytest.raises(UnknownTable):
        topo.get_table("nope")
    s = topo.stream("s", topic="s", columns=("a",))
    with pytest.raises(TopologyError):
        topo.join("j", stream=s, joins=[Join(t, on="b")])
    other = Topology().table("t", topic="t", columns=("a",))
    with pytest.raises(UnknownTable):
        topo.join("j", stream=s, joins=[Join(other, on="a")])
