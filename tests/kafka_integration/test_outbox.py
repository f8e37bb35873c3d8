"""The outbox: committed writes never lose their events, rolled-back ones never emit, order per
key holds through broker outages, crashes and two relays at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from kafka_integration import (
    KafkaSettings,
    OutboxRelay,
    TopicSpec,
    collect_pending,
    ensure_topics,
    entity_event,
    unit_of_work,
)
from tests.support import PATIENCE, ROOT, Tokens, kafka_script, local_kafka, read_topic, wait_until


async def test_a_rolled_back_write_emits_nothing(
    pool: asyncpg.Pool, kafka: KafkaSettings, test_env: dict[str, str], make_relay: Callable[..., OutboxRelay]
) -> None:
    await ensure_topics(kafka, [TopicSpec("things")])
    relay = make_relay()
    await relay.start()
    try:
        with pytest.raises(RuntimeError):
            async with unit_of_work(pool) as uow:
                uow.emit(entity_event("things", "thing", "created", {"id": 1}))
                raise RuntimeError("the write fails after declaring its event")
        async with unit_of_work(pool) as uow:
            uow.emit(entity_event("things", "thing", "created", {"id": 2}))
        assert [m.key for m in await read_topic(kafka, "things", min_count=1)] == ["2"]

        async def outbox_empty() -> bool:  # nothing left that could still be published
            return await relay.backlog() == 0

        await wait_until(outbox_empty)
        assert [m.key for m in await read_topic(kafka, "things", timeout=0)] == ["2"]
    finally:
        await relay.stop()


async def test_an_event_committed_by_a_killed_process_is_published_by_the_next_relay(
    pool: asyncpg.Pool, kafka: KafkaSettings, test_env: dict[str, str], make_relay: Callable[..., OutboxRelay]
) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.kafka_integration.commit_and_die", "5"],
        cwd=ROOT,
        env={**os.environ, **test_env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == -9 and "committed" in done.stdout
    relay = make_relay()
    assert await relay.backlog() == 5
    await relay.start()
    try:
        messages = await read_topic(kafka, "things", min_count=5)
        assert [m.key for m in messages] == ["0", "1", "2", "3", "4"] or sorted(m.key for m in messages) == [
            "0",
            "1",
            "2",
            "3",
            "4",
        ]

        async def outbox_empty() -> bool:  # the relay deletes a row once Kafka acknowledged it
            return await relay.backlog() == 0

        await wait_until(outbox_empty)
        assert len(await read_topic(kafka, "things", timeout=0)) == 5
    finally:
        await relay.stop()


async def test_two_relays_publish_each_event_once_in_order_per_key(
    pool: asyncpg.Pool, kafka: KafkaSettings, test_env: dict[str, str], make_relay: Callable[..., OutboxRelay]
) -> None:
    await ensure_topics(kafka, [TopicSpec("things", partitions=3)])
    relays = [make_relay(), make_relay()]
    for relay in relays:
        await relay.start()
    try:

        async def writer(key: int) -> None:
            for version in range(30):
                async with unit_of_work(pool) as uow:
                    uow.emit(entity_event("things", "thing", "updated", {"id": key, "version": version}))

        await asyncio.gather(*(writer(k) for k in range(8)))
        messages = await read_topic(kafka, "things", min_count=240)
        assert len(messages) == 240
        for key in range(8):
            versions = [m.value["version"] for m in messages if m.key == str(key)]
            assert versions == list(range(30))
        assert sum(r.is_leader for r in relays) == 1
    finally:
        for relay in relays:
            await relay.stop()


async def test_a_relay_that_does_not_lead_learns_of_deliveries_from_the_leaders_announcements(
    pool: asyncpg.Pool, kafka: KafkaSettings, test_env: dict[str, str], make_relay: Callable[..., OutboxRelay]
) -> None:
    """A request served by the instance that does not publish waits on the leader's NOTIFY (a
    relay skips only its own announcements, which it resolved already)."""
    lock = await asyncpg.connect(test_env["DATABASE_URL"])  # holds the leadership: nobody publishes yet
    key = f"kafka_outbox:{test_env['DATABASE_SCHEMA']}"
    await lock.execute("SELECT pg_advisory_lock(hashtext($1))", key)
    relays = [make_relay(), make_relay()]
    try:
        for relay in relays:
            await relay.start()
        async with collect_pending() as ids:
            for n in range(3):
                async with unit_of_work(pool) as uow:
                    uow.emit(entity_event("things", "thing", "created", {"id": n}))
        assert len(ids) == 3
        waits = [asyncio.create_task(relay.wait_delivered(ids, PATIENCE)) for relay in relays]

        async def both_wait() -> bool:
            return all(set(ids) <= set(relay._waiters) for relay in relays)

        await wait_until(both_wait)
        await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
        assert await asyncio.gather(*waits) == [True, True]
        assert sum(r.is_leader for r in relays) == 1
        assert len(await read_topic(kafka, "things", timeout=0)) == 3
    finally:
        for relay in relays:
            await relay.stop()
        await lock.close()


async def test_a_request_waiting_for_delivery_when_the_relays_connection_dies_is_answered(
    pool: asyncpg.Pool, kafka: KafkaSettings, test_env: dict[str, str], make_relay: Callable[..., OutboxRelay]
) -> None:
    """The relay reconnects with a new backend (a new pid for its announcements), publishes what
    is still in the outbox and resolves the request that waited across the restart."""
    lock = await asyncpg.connect(test_env["DATABASE_URL"])  # nobody publishes until it is released
    key = f"kafka_outbox:{test_env['DATABASE_SCHEMA']}"
    await lock.execute("SELECT pg_advisory_lock(hashtext($1))", key)
    relay = make_relay()
    try:
        await relay.start()
        async with collect_pending() as ids:
            async with unit_of_work(pool) as uow:
                uow.emit(entity_event("things", "thing", "created", {"id": 1}))
        waiting = asyncio.create_task(relay.wait_delivered(ids, PATIENCE))

        async def relay_backends() -> list[int]:
            return [
                r["pid"]
                for r in await lock.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_try_advisory%' AND pid <> $1",
                    lock.get_server_pid(),
                )
            ]

        async def relay_connected() -> bool:
            return len(await relay_backends()) == 1 and set(ids) <= set(relay._waiters)

        await wait_until(relay_connected)
        (first,) = await relay_backends()
        await lock.execute("SELECT pg_terminate_backend($1)", first)
        await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
        assert await waiting is True
        assert [m.key for m in await read_topic(kafka, "things", timeout=0)] == ["1"]
    finally:
        await relay.stop()
        await lock.close()


@pytest.mark.slow  # the broker's stop and restart: `make test-slow`
@pytest.mark.skipif(
    os.environ.get("BOOTSTRAP_SERVERS") is not None, reason="needs the project's own broker to stop"
)
async def test_writes_succeed_while_kafka_is_down_and_arrive_once_in_order_after(
    test_env: dict[str, str], kafka: KafkaSettings, serve: Any, tokens: Tokens
) -> None:
    assert local_kafka(test_env)
    client: TestClient[Any, Any] = await serve(
        create_app(Config.from_env({**test_env, "EVENT_DELIVERY_TIMEOUT": "0.5"})), tokens.admin()
    )
    first = await client.post("/organizations", json={"organization": {"name": "before"}})
    org_id = (await first.json())["id"]
    await asyncio.to_thread(kafka_script, "stop")
    try:
        statuses = []
        for version in range(5):
            resp = await client.put(
                f"/organizations/{org_id}", json={"organization": {"name": f"v{version}"}}
            )
            statuses.append((resp.status, resp.headers.get("X-Events-Delivered")))
        created = await client.post("/organizations", json={"organization": {"name": "during"}})
        statuses.append((created.status, created.headers.get("X-Events-Delivered")))
    finally:
        await asyncio.to_thread(kafka_script, "start")
    assert statuses == [(200, "false")] * 5 + [(201, "false")]
    messages = await read_topic(kafka, "organizations", min_count=7)
    names = [m.value["name"] for m in messages if m.key == str(org_id)]
    assert names == ["before", "v0", "v1", "v2", "v3", "v4"]
    assert [m.value["name"] for m in messages if m.key != str(org_id)] == ["during"]

    async def outbox_empty() -> bool:  # once it is, nothing more can be published
        return await _outbox_rows(test_env) == 0

    await wait_until(outbox_empty)
    assert len(await read_topic(kafka, "organizations", timeout=0)) == 7


async def _outbox_rows(env: dict[str, str]) -> int:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        return int(await conn.fetchval("SELECT count(*) FROM kafka_outbox"))
    finally:
        await conn.close()
