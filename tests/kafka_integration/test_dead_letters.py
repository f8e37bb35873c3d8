"""An event Kafka can never take is moved aside; the events after it are published in order;
the CLI lists, re-publishes (once fixed) and discards the dead letters."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable

import asyncpg
import orjson
import pytest

from kafka_integration import (
    EventTooLarge,
    KafkaSettings,
    OutboxRelay,
    TopicSpec,
    ensure_topics,
    entity_event,
    unit_of_work,
)
from tests.support import ROOT, read_topic, wait_until


async def _emit(pool: asyncpg.Pool, key: int, version: int) -> int:
    async with unit_of_work(pool) as uow:
        uow.emit(entity_event("things", "thing", "updated", {"id": key, "version": version}))
    newest: int = await pool.fetchval("SELECT max(id) FROM kafka_outbox")
    return newest


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kafka_integration", "dead-letters", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


async def test_an_unpublishable_event_is_dead_lettered_and_the_ones_after_it_are_published(
    pool: asyncpg.Pool,
    kafka: KafkaSettings,
    test_env: dict[str, str],
    make_relay: Callable[..., OutboxRelay],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ensure_topics(kafka, [TopicSpec("things", partitions=1)])  # one order to check
    await _emit(pool, 1, 0)
    too_large = await _emit(pool, 2, 0)
    await _emit(pool, 1, 1)
    bad_headers = await _emit(pool, 3, 0)
    await _emit(pool, 1, 2)
    bad_topic = await _emit(pool, 4, 0)
    await _emit(pool, 5, 0)
    # made unpublishable by hand, as a bug elsewhere could: 2 MiB, headers not a mapping, a bad topic
    await pool.execute(
        "UPDATE kafka_outbox SET value = $2 WHERE id = $1", too_large, b"x" * (2 * 1024 * 1024)
    )
    await pool.execute("UPDATE kafka_outbox SET headers = '[1, 2]' WHERE id = $1", bad_headers)
    await pool.execute("UPDATE kafka_outbox SET topic = 'no such/topic!' WHERE id = $1", bad_topic)

    counted: list[int] = []
    relay = make_relay(on_dead_lettered=counted.append)
    caplog.set_level(logging.ERROR, logger="kafka_integration.relay")
    await relay.start()
    try:
        messages = await read_topic(kafka, "things", min_count=4)
        assert [(m.key, m.value["version"]) for m in messages] == [("1", 0), ("1", 1), ("1", 2), ("5", 0)]

        async def settled() -> bool:
            return await relay.backlog() == 0

        await wait_until(settled)
        dead = await pool.fetch("SELECT id, key, error FROM kafka_outbox_dead ORDER BY id")
        assert [(r["id"], r["key"]) for r in dead] == [(too_large, "2"), (bad_headers, "3"), (bad_topic, "4")]
        assert "MessageSizeTooLargeError" in dead[0]["error"]
        assert "AttributeError" in dead[1]["error"]
        assert "InvalidTopicError" in dead[2]["error"]
        assert sum(counted) == 3 == relay.dead_lettered
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(
            f"event {too_large} (topic things, key 2" in m and "MessageSizeTooLarge" in m for m in logged
        )

        # the CLI, as an operator runs it
        listed = await _cli(test_env, "list")
        assert listed.returncode == 0, listed.stderr
        rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
        assert (rows[0]["id"], rows[0]["topic"], rows[0]["value_bytes"]) == (
            too_large,
            "things",
            2 * 1024 * 1024,
        )
        assert len(rows) == 3
        # not fixed yet: re-published, it is dead-lettered again and nothing reaches the topic
        assert (await _cli(test_env, "republish", str(too_large))).returncode == 0
        await wait_until(lambda: _dead_count(pool, 3))
        again = await pool.fetchval("SELECT id FROM kafka_outbox_dead WHERE key = '2'")
        assert again > too_large
        # fixed (shrunk), re-published: it arrives once, after the others
        await pool.execute(
            "UPDATE kafka_outbox_dead SET value = $2 WHERE id = $1",
            again,
            b'{"id": 2, "version": 0, "fixed": true}',
        )
        republished = await _cli(test_env, "republish", str(again))
        assert republished.returncode == 0, republished.stderr
        assert "back in the outbox" in republished.stdout
        discarded = await _cli(test_env, "discard", str(bad_headers))
        assert discarded.returncode == 0, discarded.stderr
        messages = await read_topic(kafka, "things", min_count=5)
        assert [(m.key, m.value.get("fixed")) for m in messages][-1] == ("2", True)
        await wait_until(settled)
        await _emit(pool, 5, 1)
        messages = await read_topic(kafka, "things", min_count=6)
        assert [m.key for m in messages] == ["1", "1", "1", "5", "2", "5"]
        assert messages[4].headers["event_type"] == "thing_updated"
        remaining = await _cli(test_env, "list")
        assert [orjson.loads(line)["id"] for line in remaining.stdout.splitlines()] == [bad_topic]
        gone = await _cli(test_env, "republish", str(again))
        assert gone.returncode == 1 and f"no dead-lettered event with id {again}" in gone.stderr
    finally:
        await relay.stop()


async def _dead_count(pool: asyncpg.Pool, count: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM kafka_outbox_dead") == count)


async def test_an_event_over_the_limit_is_refused_at_write_time_and_nothing_is_written(
    pool: asyncpg.Pool,
) -> None:
    with pytest.raises(EventTooLarge) as refused:
        async with unit_of_work(pool, max_event_bytes=2000) as uow:
            await uow.conn.execute("CREATE TABLE written (n int)")
            uow.emit(entity_event("things", "thing", "created", {"id": 7, "text": "x" * 3000}))
    assert refused.value.topic == "things" and refused.value.key == "7" and refused.value.size > 3000
    assert "over the limit of 2000 bytes" in str(refused.value)
    assert await pool.fetchval("SELECT to_regclass('written')") is None
    assert await pool.fetchval("SELECT count(*) FROM kafka_outbox") == 0
    # the default limit is under Kafka's 1 MiB request limit
    with pytest.raises(EventTooLarge):
        async with unit_of_work(pool) as uow:
            uow.emit(entity_event("things", "thing", "created", {"id": 8, "text": "x" * (1024 * 1024)}))
    async with unit_of_work(pool) as uow:
        uow.emit(entity_event("things", "thing", "created", {"id": 9, "text": "x" * (800 * 1024)}))
    assert await pool.fetchval("SELECT count(*) FROM kafka_outbox") == 1
