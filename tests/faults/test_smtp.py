"""The SMTP server refusing connections for 60 s under a steady order rate, then refusing one
recipient with a 5xx: every email arrives once after the outage, without a restart; the refused
one is `failed` with the server's error and never retried."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.faults.load import ORDER, SteadyLoad, acknowledged_since, check, flowing
from tests.faults.sink import FaultySink
from tests.support import base_url, unique, wait_until
from tests.system.conftest import WorkerProcess

OUTAGE_SECONDS = 60


async def _notification(env: dict[str, str], message_key: str) -> dict[str, Any] | None:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        row = await conn.fetchrow(
            "SELECT status, error, attempts FROM email_notifications WHERE message_id LIKE $1",
            f"<{message_key}.%",
        )
        return dict(row) if row else None
    finally:
        await conn.close()


async def test_smtp_refusing_connections_for_a_minute_then_one_recipient_loses_and_doubles_nothing(
    orders_client: TestClient[Any, Any],
    customers_client: TestClient[Any, Any],
    parties: tuple[int, list[int]],
    workers: list[WorkerProcess],
    sink: FaultySink,
    system_env: dict[str, str],
    kafka: KafkaSettings,
    admin_token: str,
) -> None:
    org, customers = parties
    refused = f"{unique('refused')}@example.com"
    made = await customers_client.post(
        "/customers", json={"customer": {"name": "Refused", "last_name": "R", "email": refused}}
    )
    assert made.status == 201
    sink.refused.add(refused)
    workers[0].start()
    url = base_url(orders_client)
    async with SteadyLoad([url], admin_token, org, customers, unique("s")) as load:
        await flowing(system_env, load)
        fault_at = time.time()
        await sink.stop()
        await asyncio.sleep(OUTAGE_SECONDS)  # the fault itself: a minute of refused connections
        await sink.start()
        restored = time.time()
        body = {"po": "refused", "organization_id": org, "customer_id": (await made.json())["id"], **ORDER}
        placed = await orders_client.post("/orders", json=body)
        assert placed.status == 201, await placed.text()
        await acknowledged_since(load, restored, 10)
    await check(
        "SMTP refusing connections 60 s", load, system_env, kafka, fault_at=fault_at, outage_until=restored
    )
    key = f"invoice-{(await placed.json())['invoice_id']}"

    async def refused_for_good() -> bool:
        row = await _notification(system_env, key)
        return row is not None and row["status"] == "failed"

    await wait_until(refused_for_good, timeout=120, interval=0.5)
    row = await _notification(system_env, key)
    assert row is not None and "550" in row["error"] and "mailbox unavailable" in row["error"], row
    assert row["attempts"] == 1  # a 5xx is never retried
