"""Bytewax on the seed's join: its Kafka source over the three topics and its Kafka sink, the
join as two stateful lookups. The customers and the orders are keyed by customer id into one
`stateful_flat_map` whose state per key is the customer row (and the orders that came before it,
held until it comes); its output, keyed by organization id with the organizations, goes through a
second one the same way. That is the enrichment pattern of Bytewax's docs (state per key in
`stateful_flat_map`), and it waits for a missing row as the materializer does.

Settings: `bytewax.connectors.kafka.operators.input`/`output` with their defaults
(`starting_offset=OFFSET_BEGINNING`, `batch_size=1000`, `tail=True`), one worker (`cli_main`
default, as `python -m bytewax.run` without `-w`), no recovery (the materializer rebuilds from
the source topics too), JSON with the standard library, as the docs' examples."""

from __future__ import annotations

import json
from typing import Any

import bytewax.operators as op
from bytewax._bytewax import cli_main
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow

from bench.peers import PeerArgs, output_topic, peer_args

Row = dict[str, Any]
State = tuple[Row | None, list[Row]]  # the entity's row (None until it comes), orders waiting for it


def lookup(fields: dict[str, str]) -> Any:
    """A stateful_flat_map mapper: an entity row is kept; an order is emitted with `fields` of the
    row copied in (order field name -> row field name), or held until the row comes."""

    def enrich(order: Row, row: Row) -> Row:
        return {**order, **{out: row[src] for out, src in fields.items()}}

    def mapper(state: State | None, item: tuple[str, Row]) -> tuple[State, list[Row]]:
        row, waiting = state or (None, [])
        kind, value = item
        if kind == "row":
            return (value, []), [enrich(order, value) for order in waiting]
        if row is None:
            return (None, [*waiting, value]), []
        return (row, waiting), [enrich(value, row)]

    return mapper


def build(args: PeerArgs) -> Dataflow:
    flow = Dataflow("orders_created")
    names = {args.topic(t): t for t in ("organizations", "customers", "orders")}
    source = kop.input("in", flow, brokers=[args.bootstrap], topics=list(names))

    def decode(msg: KafkaSourceMessage[bytes, bytes]) -> tuple[str, Row]:
        return names[msg.topic], json.loads(msg.value)

    records = op.map("decode", source.oks, decode)
    by_topic = op.branch("orders?", records, lambda r: r[0] == "orders")
    entities = op.branch("customers?", by_topic.falses, lambda r: r[0] == "customers")
    orders = op.map("order", by_topic.trues, lambda r: ("order", r[1]))
    customers = op.map("customer", entities.trues, lambda r: ("row", r[1]))
    organizations = op.map("organization", entities.falses, lambda r: ("row", r[1]))

    by_customer = op.merge(
        "by_customer",
        op.key_on("order_customer", orders, lambda r: str(r[1]["customer_id"])),
        op.key_on("customer_id", customers, lambda r: str(r[1]["id"])),
    )
    with_customer = op.stateful_flat_map(
        "with_customer",
        by_customer,
        lookup({"customer_name": "name", "customer_last_name": "last_name", "email": "email"}),
    )
    by_org = op.merge(
        "by_org",
        op.key_on(
            "order_org",
            op.map("order_again", with_customer, lambda kv: ("order", kv[1])),
            lambda r: str(r[1]["organization_id"]),
        ),
        op.key_on("organization_id", organizations, lambda r: str(r[1]["id"])),
    )
    joined = op.stateful_flat_map("with_org", by_org, lookup({"organization_name": "name"}))

    def encode(kv: tuple[str, Row]) -> KafkaSinkMessage[bytes, bytes]:
        order = kv[1]
        return KafkaSinkMessage(str(order["id"]).encode(), json.dumps(order).encode())

    kop.output(
        "out",
        op.map("encode", joined, encode),
        brokers=[args.bootstrap],
        topic=args.topic(output_topic("bytewax")),
    )
    return flow


def main() -> None:
    cli_main(build(peer_args("bytewax")))


if __name__ == "__main__":
    main()
