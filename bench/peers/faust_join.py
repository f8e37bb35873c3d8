"""Faust (faust-streaming) on the seed's join: a GlobalTable per entity, each on RocksDB and
filled from the entity's own topic (the topic is the table's changelog, so the table is recovered
from it before any agent runs, as the materializer rebuilds from the source topics), and one agent
over the orders doing both lookups and sending the joined order to the output topic.

Settings: the defaults of faust.App (at-least-once, `processing_guarantee="at_least_once"`,
acks=-1 for the producer), `store="rocksdb://"` (the rocksdict driver: python-rocksdb is not
installed), the web server off (no port to take), the tables' partitions set to the topics' 3."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import faust

from bench.peers import PeerArgs, output_topic, peer_args

log = logging.getLogger(__name__)


class SourceTopicGlobalTable(faust.GlobalTable):  # type: ignore[misc]
    """A GlobalTable whose changelog is a topic of its own choosing (the entity topic). Faust 0.15.3
    takes `changelog_topic=` but its partition assignor (and its RocksDB store) still look the
    changelog up by the default name `<app id>-<table>-changelog`: the assignor fails with a
    KeyError inside the consumer's rebalance, and the worker hangs after "performing partition
    assignments". The one change: the name is the given topic's."""

    def _changelog_topic_name(self) -> str:
        return str(self.changelog_topic.get_topic_name())


def build(args: PeerArgs) -> faust.App:
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=str(args.workdir),
        web_enabled=False,
        topic_partitions=3,
        key_serializer="raw",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        GlobalTable=SourceTopicGlobalTable,  # the class app.GlobalTable makes (a setting of faust.App)
    )

    def entity_table(name: str) -> Any:
        # The entity topic is the table's changelog: Faust recovers the table from it on start.
        # key_type=bytes: the keys as the topic has them (a table's keys of type str are JSON strings)
        topic = app.topic(args.topic(name), key_type=bytes, value_serializer="json", partitions=3)
        return app.GlobalTable(name, key_type=bytes, partitions=3, changelog_topic=topic)

    organizations = entity_table("organizations")
    customers = entity_table("customers")
    orders = app.topic(args.topic("orders"), value_serializer="json")
    out = app.topic(args.topic(output_topic("faust")), key_type=str, value_serializer="json")

    @app.agent(orders)
    async def join(stream: Any) -> None:
        async for order in stream:
            org = organizations.get(str(order["organization_id"]).encode())
            customer = customers.get(str(order["customer_id"]).encode())
            if org is None or customer is None:  # an inner join, as the materializer's
                log.warning("order %s: no organization or customer yet", order["id"])
                continue
            await out.send(
                key=str(order["id"]),
                value={
                    **order,
                    "organization_name": org["name"],
                    "customer_name": customer["name"],
                    "customer_last_name": customer["last_name"],
                    "email": customer["email"],
                },
            )

    return app


def main() -> None:
    app = build(peer_args("faust"))
    faust.Worker(app, loglevel=os.environ.get("FAUST_LOGLEVEL", "WARNING")).execute_from_commandline()


if __name__ == "__main__":
    main()
