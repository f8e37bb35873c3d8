"""Events per second through the outbox relay into Kafka, beside raw aiokafka produce of the same
messages in the same run.

    .venv/bin/python bench/outbox_relay.py --events 100000

Uses the running infrastructure (`bash infra/up.sh` first, or BOOTSTRAP_SERVERS/DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from kafka_integration import (
    Event,
    KafkaSettings,
    OutboxRelay,
    TopicSpec,
    encode,
    ensure_topics,
    new_producer,
    write_outbox,
)
from servicekit.db import DatabaseSettings, connect, migrate, open_pool
from tests.support import start_infra


def make_events(n: int, keys: int) -> list[Event]:
    return [
        Event(
            topic="bench_things",
            key=str(i % keys),
            value={"id": i % keys, "name": f"Organization {i}", "version": i, "action": "updated"},
            type="thing_updated",
        )
        for i in range(n)
    ]


async def raw_produce(kafka: KafkaSettings, events: list[Event], topic: str) -> float:
    producer = new_producer(kafka)
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [
            await producer.send(topic, value=encode(e.value), key=e.key.encode(), headers=e.headers())
            for e in events
        ]
        await asyncio.gather(*futures)
        return time.perf_counter() - start
    finally:
        await producer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    args = parser.parse_args()
    env = {
        **start_infra(),
        **{k: v for k, v in os.environ.items() if k in ("BOOTSTRAP_SERVERS", "DATABASE_URL")},
    }
    run = uuid.uuid4().hex[:8]
    env |= {"DATABASE_SCHEMA": f"bench_{run}", "KAFKA_TOPIC_PREFIX": f"bench{run}."}
    kafka = KafkaSettings.from_env(env, client_id="bench")
    db = DatabaseSettings.from_env(env, schema="unused")
    events = make_events(args.events, args.keys)
    await ensure_topics(
        kafka, [TopicSpec("bench_things", partitions=3), TopicSpec("bench_raw", partitions=3)]
    )

    raw_seconds = await raw_produce(kafka, events, kafka.topic("bench_raw"))

    async with open_pool(db) as pool:
        await migrate(pool, ["kafka_integration"], db.schema)
        for start in range(0, len(events), 5000):
            async with pool.acquire() as conn, conn.transaction():
                await write_outbox(conn, events[start : start + 5000])
        relay = OutboxRelay(kafka, pool, schema=db.schema, connect=lambda: connect(db))
        started = time.perf_counter()
        await relay.start()
        while relay.published < len(events):
            await asyncio.sleep(0.01)
        relay_seconds = time.perf_counter() - started
        await relay.stop()
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{db.schema}" CASCADE')

    raw_rate = len(events) / raw_seconds
    relay_rate = len(events) / relay_seconds
    print(f"events: {len(events)} over {args.keys} keys, 3 partitions, idempotent producer, acks=all")
    print(f"raw aiokafka produce: {raw_rate:,.0f} events/s ({raw_seconds:.2f} s)")
    print(f"outbox relay:         {relay_rate:,.0f} events/s ({relay_seconds:.2f} s)")
    print(f"relay / raw:          {relay_rate / raw_rate:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
