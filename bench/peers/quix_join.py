"""Quix Streams on the seed's join. It has no global-table join; the equivalent its docs prescribe
for enrichment: re-key the orders by customer_id (`group_by`, a repartition topic), `join_asof`
with the customers topic, re-key by organization_id, `join_asof` with organizations, `to_topic`.
At-least-once (its default); changelog topics off, as the materializer rebuilds from the source
topics too."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from quixstreams import Application

from bench.peers import PeerArgs, output_topic, peer_args


def run(args: PeerArgs) -> None:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(args.workdir),
        use_changelog_topics=False,
        loglevel=logging.WARNING,
        # aiokafka partitions by murmur2, as Java does; make librdkafka do the same for repartitions
        producer_extra_config={"partitioner": "murmur2_random"},
    )
    orders_t = app.topic(args.topic("orders"), key_deserializer="str")
    customers_t = app.topic(args.topic("customers"), key_deserializer="str")
    orgs_t = app.topic(args.topic("organizations"), key_deserializer="str")
    out_t = app.topic(args.topic(output_topic("quix")), key_serializer="str")
    customers = app.dataframe(customers_t)
    orgs = app.dataframe(orgs_t)
    sdf = app.dataframe(orders_t)
    sdf = sdf.group_by(
        lambda v: str(v["customer_id"]), name="by_customer", key_serializer="str", key_deserializer="str"
    )

    def with_customer(order: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
        return {
            **order,
            "customer_name": c["name"],
            "customer_last_name": c["last_name"],
            "email": c["email"],
        }

    sdf = sdf.join_asof(customers, how="inner", on_merge=with_customer)
    sdf = sdf.group_by(
        lambda v: str(v["organization_id"]), name="by_org", key_serializer="str", key_deserializer="str"
    )
    sdf = sdf.join_asof(orgs, how="inner", on_merge=lambda o, g: {**o, "organization_name": g["name"]})
    sdf.to_topic(out_t)
    app.run()


if __name__ == "__main__":
    run(peer_args("quix"))
