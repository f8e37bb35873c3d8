"""The seed's ksqlDB statements, declared with the materializer (shared by tests, the kill script
and the benchmark's shape)."""

from __future__ import annotations

from materializer import Join, Topology
from materializer.join import JoinKind, OnOutput
from materializer.sql import parse_sql


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


def seed_sql(
    *, kind: JoinKind = "inner", where_created: bool = False, to_topic: str | None = "orders_created"
) -> str:
    """The same topology in ksqlDB's SQL (the seed's statements, with `action` on orders_stream)."""
    join = "INNER JOIN" if kind == "inner" else "LEFT JOIN"
    where = "WHERE os.action = 'created'" if where_created else ""
    sink = f"WITH (kafka_topic='{to_topic}')" if to_topic else ""
    return f"""
CREATE STREAM organizations_stream (id INTEGER, name VARCHAR)
  WITH (kafka_topic='organizations', value_format='json', partitions=1);
CREATE TABLE organizations_table AS
  SELECT id, LATEST_BY_OFFSET(name) AS name FROM organizations_stream GROUP BY id EMIT CHANGES;
CREATE STREAM customers_stream (id INTEGER, name VARCHAR, last_name VARCHAR, email VARCHAR, action VARCHAR)
  WITH (kafka_topic='customers', value_format='json', partitions=1);
CREATE TABLE customers_table AS
  SELECT id, LATEST_BY_OFFSET(name) AS name, LATEST_BY_OFFSET(last_name) AS last_name,
         LATEST_BY_OFFSET(email) AS email, LATEST_BY_OFFSET(action) AS action
  FROM customers_stream GROUP BY id EMIT CHANGES;
CREATE TABLE customer_created AS
  SELECT id, name, last_name, email, action FROM customers_table WHERE action = 'created' EMIT CHANGES;
CREATE STREAM orders_stream (id INTEGER, po VARCHAR, organization_id INTEGER, customer_id INTEGER,
                             action VARCHAR)
  WITH (kafka_topic='orders', value_format='json', partitions=1);
CREATE STREAM orders_created {sink} AS
  SELECT os.id, os.po, os.organization_id, os.customer_id, os.action, ot.name AS organization_name,
         ct.name AS customer_name, ct.last_name AS customer_last_name, ct.email AS email
  FROM orders_stream os
    {join} organizations_table ot ON os.organization_id = ot.id
    {join} customers_table ct ON os.customer_id = ct.id
  {where}
  EMIT CHANGES;
"""


def seed_topology_sql(
    *,
    kind: JoinKind = "inner",
    on_output: OnOutput | None = None,
    where_created: bool = False,
    to_topic: str | None = "orders_created",
) -> Topology:
    """`seed_topology` declared by `seed_sql` instead of Python calls."""
    catalog = parse_sql(seed_sql(kind=kind, where_created=where_created, to_topic=to_topic))
    return catalog.topology(
        on_output=None if on_output is None else {"orders_created": on_output},
        topicless=() if to_topic else ("orders_created",),
    )
