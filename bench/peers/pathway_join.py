"""Pathway on the seed's join: `pw.io.kafka.read` of the three topics (JSON, a schema each, the
entity tables keyed by their id), `asof_now_join` of the orders with the customers, then with the
organizations (each order joined with the rows present when it is processed, and never updated
afterwards: what a lookup of the current row is), `pw.io.kafka.write` of the result as JSON.

Settings: the connectors' defaults (`autocommit_duration_ms=1500` for the readers, the JSON
writer), rdkafka settings as in Pathway's Kafka guide (`bootstrap.servers`, `group.id`,
`auto.offset.reset=earliest`, `session.timeout.ms`), one Pathway process and thread (`pw.run`
default), no persistence (the materializer rebuilds from the source topics too), monitoring
output off."""

from __future__ import annotations

import uuid

import pathway as pw

from bench.peers import PeerArgs, output_topic, peer_args


# Pathway reserves the column name `id` (each row's key, a pointer): the JSON field "id" is read
# into a column of another name (json_field_paths), and the output carries the order's id as
# "order_id" (bench/peers/__init__.py: ID_FIELDS, what the checker reads).
class Organization(pw.Schema):
    organization_id: int = pw.column_definition(primary_key=True)
    name: str


class Customer(pw.Schema):
    customer_id: int = pw.column_definition(primary_key=True)
    name: str
    last_name: str
    email: str


class Order(pw.Schema):
    order_id: int = pw.column_definition(primary_key=True)
    po: str
    organization_id: int
    customer_id: int


def build(args: PeerArgs) -> None:
    group = f"bench-pathway-{uuid.uuid4().hex[:8]}"

    def rdkafka(role: str) -> dict[str, str]:
        return {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"{group}-{role}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": "6000",
        }

    def read(name: str, schema: type[pw.Schema], id_column: str) -> pw.Table:
        return pw.io.kafka.read(
            rdkafka(name),
            topic=args.topic(name),
            schema=schema,
            format="json",
            json_field_paths={id_column: "/id"},
        )

    organizations = read("organizations", Organization, "organization_id")
    customers = read("customers", Customer, "customer_id")
    orders = read("orders", Order, "order_id")
    with_customer = orders.asof_now_join(customers, orders.customer_id == customers.customer_id).select(
        *pw.left,
        customer_name=pw.right.name,
        customer_last_name=pw.right.last_name,
        email=pw.right.email,
    )
    joined = with_customer.asof_now_join(
        organizations, with_customer.organization_id == organizations.organization_id
    ).select(*pw.left, organization_name=pw.right.name)
    pw.io.kafka.write(joined, rdkafka("out"), topic_name=args.topic(output_topic("pathway")), format="json")


def main() -> None:
    build(peer_args("pathway"))
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


if __name__ == "__main__":
    main()
