"""The worker's topology comes from streams.sql: the invoice email's row carries the latest
organization and customer names, the welcome and invitation rows what their emails read (offline)."""

from __future__ import annotations

from typing import Any

from bench import output_check
from materializer import OfflineMaterializer, Source
from notifications import streams


async def test_worker_topology_from_sql_feeds_each_email_the_latest_names() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(kind: str) -> streams.Handler:
        async def handle(row: dict[str, Any], source: Source) -> None:
            seen.append((kind, row))

        return handle

    topo = streams.worker_topology(
        invoice=handler("invoice"), welcome=handler("welcome"), invitation=handler("invitation")
    )
    assert topo.output_topics() == {"orders_created"}  # the emails' streams write no topic
    m = OfflineMaterializer(topo)
    await m.feed("organizations", {"id": 13, "name": "SuperCompany", "action": "created"}, key=13)
    await m.feed("organizations", {"id": 14, "name": "Owner", "action": "created"}, key=14)
    await m.feed(
        "customers",
        {
            "id": 10,
            "name": "A",
            "last_name": "Do",
            "email": "a@x.io",
            "organization_id": 14,
            "action": "created",
        },
        key=10,
    )
    await m.feed("customers", {"id": 10, "name": "B", "action": "updated"}, key=10)
    await m.feed("organizations", {"id": 13, "name": "SuperCompany Tech", "action": "updated"}, key=13)
    invoice = {
        "id": 1,
        "order_id": 1,
        "po": "po002",
        "organization_id": 13,
        "customer_id": 10,
        "date": "d",
        "deliver_date": "d",
        "state": "pending",
        "total": "1.50",
        "items": [],
        "action": "created",
    }
    await m.feed("invoices", invoice, key=1)
    await m.feed("invoices", {**invoice, "action": "updated"}, key=1)
    association = {"id": 5, "organization_id": 13, "customer_id": 10, "state": "pending", "action": "created"}
    await m.feed("organization_associations", association, key=5)
    assert m.dead_letters == []
    kinds = [k for k, _ in seen]
    assert kinds == ["welcome", "invoice", "invitation"]
    rows = dict(seen)
    assert rows["welcome"] == {
        "id": 10,
        "name": "A",
        "last_name": "Do",
        "email": "a@x.io",
        "action": "created",
    }
    assert rows["invoice"]["organization_name"] == "SuperCompany Tech"
    assert (rows["invoice"]["customer_name"], rows["invoice"]["email"]) == ("B", "a@x.io")
    assert rows["invitation"]["customer_organization_id"] == 14
    assert rows["invitation"]["organization_name"] == "SuperCompany Tech"


def test_api_topology_reads_the_tables_and_the_enriched_orders_topic() -> None:
    topo = streams.api_topology()
    assert set(streams.TABLES) <= set(topo.tables) and topo.joins == {}
    orders = topo.tables[streams.ORDERS_CREATED]
    assert orders.topic == "orders_created"
    # what the benchmark checks every join engine's orders_created for, keyed by "id"
    assert orders.columns == ("id", *output_check.FIELDS)
