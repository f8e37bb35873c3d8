"""The seed's ksqlDB statements, declared with the materializer (shared by tests, the kill script
and the benchmark's shape)."""

from __future__ import annotations

from materializer import Join, Topology
from materializer.join import JoinKind, OnOutput


def seed_topology(
    *,
    kind: JoinKind = "inner",
    on_output: OnOutput | None = None,
    where_created: bool = False,
    to_topic: str | None = "orders_created",
) -> Topology:
    topo = Topology()
    orgs = topo.table("organizations_table", topic="organizations", columns=("id", "name"))
    custs = topo.table(
        "customers_table", topic="customers", columns=("id", "name", "last_name", "email", "action")
    )
    topo.filtered("customer_created", custs, where=lambda row: row.get("action") == "created")
    orders = topo.stream(
        "orders_stream",
        topic="orders",
        columns={"id": int, "po": str, "organization_id": int, "customer_id": int, "action": str},
    )
    topo.join(
        "orders_created",
        stream=orders,
        joins=[
            Join(orgs, on="organization_id", kind=kind, columns={"organization_name": "name"}),
            Join(
                custs,
                on="customer_id",
                kind=kind,
                columns={"customer_name": "name", "customer_last_name": "last_name", "email": "email"},
            ),
        ],
        where=(lambda r: r.get("action") == "created") if where_created else None,
        to_topic=to_topic,
        on_output=on_output,
    )
    return topo
