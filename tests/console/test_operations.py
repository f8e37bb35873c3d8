"""The console's operations against real Kafka, PostgreSQL and SMTP: dead letters read back and
replayed (recorded, once), a failed notification retried, the lag per partition; and the same
as commands (`python -m console ...`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from console import deadletters, lag, notices
from console.config import OperationsSettings
from console.errors import InvalidInput, NotAllowed, NotFound
from kafka_integration import Event, KafkaSettings, Producer, new_producer
from servicekit.db import migrate
from tests.support import ROOT, unique, wait_for_mails, wait_until


async def _console(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m console ARGS` as a process (off the event loop)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "console", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _letters(pool: asyncpg.Pool, ops: OperationsSettings, count: int) -> list[deadletters.Letter]:
    found: list[deadletters.Letter] = []

    async def enough() -> bool:
        found[:] = await deadletters.listing(pool, ops)
        return len(found) >= count

    await wait_until(enough, timeout=60, interval=0.5)
    return found


async def test_an_invoice_for_an_unknown_customer_is_listed_then_replayed_and_emailed(
    customers_client: TestClient[Any, Any],
    worker: Any,
    pool: asyncpg.Pool,
    ops: OperationsSettings,
    kafka: KafkaSettings,
    test_env: dict[str, str],
) -> None:
    address = f"{unique('replay')}@gmail.com"
    made = await customers_client.post("/organizations", json={"organization": {"name": "ReplayCo"}})
    org = await made.json()
    invoice = {"id": 910001, "order_id": 1, "po": "replay1", "organization_id": org["id"]}
    invoice["customer_id"] = 810001  # no such customer yet
    producer = Producer(kafka)
    await producer.start()
    try:
        created = {**invoice, "action": "created"}
        await producer.produce([Event("invoices", "910001", created, "invoice_created")])
        letters = await _letters(pool, ops, 1)
        [letter] = letters
        assert letter.kind == "materializer" and letter.topic == "invoices" and letter.key == "910001"
        assert letter.source.startswith("invoices/") and letter.reason and letter.replayed is None
        assert letter.value["customer_id"] == 810001
        # the customer arrives; the replay joins it now
        customer = {"id": 810001, "name": "Re", "last_name": "Play", "email": address, "action": "created"}
        await producer.produce([Event("customers", "810001", customer, "customer_created")])
        await wait_for_mails(test_env, address, count=1)  # the welcome: the customer is in the tables
        [done] = await deadletters.replay(pool, ops, [letter.id], "tester")
        assert done["replayed_to"].startswith("invoices/")
        found = await wait_for_mails(test_env, address, count=2, timeout=60)
        assert len([m for m in found if "replay1" in str(m["Subject"])]) == 1
        [again] = await deadletters.listing(pool, ops)
        assert again.replayed is not None and again.replayed["actor"] == "tester"
        with pytest.raises(NotAllowed):  # once only
            await deadletters.replay(pool, ops, [letter.id], "tester")
        # the lag per partition of the worker's group, as Kafka has it
        rows = await lag.partition_lag(ops)
        assert any(r["topic"] == "invoices" for r in rows)
        assert all(r["lag"] >= 0 and r["end"] >= r["committed"] for r in rows)
        # the same through the command line
        env = {**test_env, "PATH": "/usr/bin:/bin"}
        listed = await _console(env, "--json", "deadletters", "list")
        assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [letter.id]
        shown = await _console(env, "lag")
        assert shown.returncode == 0 and "invoices" in shown.stdout
        refused = await _console(env, "deadletters", "replay", letter.id)
        assert refused.returncode == 2 and "replayed already" in refused.stderr
    finally:
        await producer.stop()


async def test_a_poison_record_is_listed_with_its_reason(
    customers_client: TestClient[Any, Any],  # creates the topics first, as in tests/system
    worker: Any,
    pool: asyncpg.Pool,
    ops: OperationsSettings,
    kafka: KafkaSettings,
) -> None:
    raw = new_producer(kafka)
    await raw.start()
    try:
        await raw.send_and_wait(kafka.topic("invoices"), b"{not json \x00\x1b[31m", key=b"\xff\x00k")
    finally:
        await raw.stop()
    [letter] = await _letters(pool, ops, 1)
    assert "JSON" in letter.reason or "json" in letter.reason


async def test_an_outbox_dead_letter_is_moved_back_into_its_outbox(
    pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    schema = ops.schemas["orders"]
    await migrate(pool, ["kafka_integration"], schema)  # the tests share one schema for all
    await pool.execute(
        f"""INSERT INTO "{schema}".kafka_outbox_dead (id, topic, key, value, headers, created_at, error)
            VALUES (77, 'orders', '5', '{{"id": 5}}', '{{}}', now(), 'MessageSizeTooLargeError')"""
    )
    letters = await deadletters.listing(pool, ops)
    mine = [x for x in letters if x.id == "o-orders-77"]
    assert mine and mine[0].reason == "MessageSizeTooLargeError" and mine[0].topic == "orders"
    [done] = await deadletters.replay(pool, ops, ["o-orders-77"], "tester")
    assert done["replayed_to"].startswith("outbox of orders")
    assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".kafka_outbox WHERE key = $1', "5") == 1
    assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".kafka_outbox_dead') == 0
    with pytest.raises(NotAllowed):
        await deadletters.replay(pool, ops, ["o-orders-77"], "tester")
    with pytest.raises(NotFound):
        await deadletters.replay(pool, ops, ["o-orders-78"], "tester")


@pytest.mark.parametrize(
    "bad",
    [
        *("", "x", "m-1", "m--1-2", "m-1-2\x00", "o-../etc-1", "o-nosuch-1", "o-orders-1 OR 1=1"),
        *("m-1-" + "9" * 40, "m-1-2" * 1000, "m-\u0661-1"),  # too long, too large, not ASCII
    ],
)
async def test_a_malformed_dead_letter_id_is_refused_and_changes_nothing(
    bad: str, pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await deadletters.replay(pool, ops, [bad], "tester")
    assert caught.value.field == "id"
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 0


async def test_too_many_or_no_ids_are_refused(pool: asyncpg.Pool, ops: OperationsSettings) -> None:
    with pytest.raises(InvalidInput):
        await deadletters.replay(pool, ops, [], "tester")
    with pytest.raises(InvalidInput):
        await deadletters.replay(pool, ops, [f"m-0-{n}" for n in range(deadletters.MAX_SELECTION + 1)], "t")


async def test_a_failed_notification_is_retried_once_and_only_a_failed_one(
    pool: asyncpg.Pool, ops: OperationsSettings, test_env: dict[str, str]
) -> None:
    schema = ops.schemas["notifications"]
    await migrate(pool, ["notifications"], schema)
    ids = []
    for n, status in enumerate(("failed", "sent")):
        ids.append(
            await pool.fetchval(
                f"""INSERT INTO "{schema}".email_notifications
                    (source_topic, source_partition, source_offset, template, recipient, message_id,
                     status, error, failures)
                    VALUES ('invoices', 0, $1, 'invoice', 'x@y.io', $2, $3, 'refused', 5) RETURNING id""",
                n,
                unique("m"),
                status,
            )
        )
    failed, sent = ids
    assert [r["id"] for r in await notices.listing(pool, ops, status="failed")] == [failed]
    await notices.retry(pool, ops, failed, "tester")
    row = await notices.one(pool, ops, failed)
    assert (row["status"], row["failures"], row["error"]) == ("created", 0, None)
    with pytest.raises(NotAllowed):
        await notices.retry(pool, ops, failed, "tester")  # no longer failed
    with pytest.raises(NotAllowed):
        await notices.retry(pool, ops, sent, "tester")
    with pytest.raises(NotFound):
        await notices.retry(pool, ops, 10**12, "tester")
    assert await pool.fetchval("SELECT count(*) FROM console_actions WHERE action = 'retry'") == 1
    for bad in ("0", "-1", "1e3", "\uff19", "1" * 30, "1\x00", ""):
        with pytest.raises(InvalidInput):
            notices.check_id(bad)
    with pytest.raises(InvalidInput):
        notices.check_filters("nope", None, None)
    with pytest.raises(InvalidInput):
        notices.check_filters(None, "1; DROP", None)
    with pytest.raises(InvalidInput):
        notices.check_filters(None, None, "t\x1b" * 10)
    # the command: retry refused for a sent one, exit 2, nothing changed
    env = {**test_env, "PATH": "/usr/bin:/bin"}
    refused = await _console(env, "notifications", "retry", str(sent))
    assert refused.returncode == 2 and "not failed" in refused.stderr
    hostile = await _console(env, "notifications", "retry", "1\x1b[2J")
    assert hostile.returncode == 2 and "id" in hostile.stderr
