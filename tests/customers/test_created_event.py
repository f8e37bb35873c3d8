"""The `customer_created` event PostgreSQL writes in the customer's own INSERT statement
(kafka_integration.row_event): a consumer decodes exactly the answered row plus `action`, whatever
the text and the database session's time zone and date style; a customer of an organization
deleted while it is being created is refused on its field, with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from kafka_integration import KafkaSettings
from servicekit.app import DB_POOL
from tests.support import Tokens, read_topic, wait_until

# Valid text (tab is the one control character allowed) that JSON must escape or carry as is.
HOSTILE = 'quote " backslash \\ slash / tab\t emoji 🎉 astral 𝄞 joiner \u200d é ß 漢字 </script>'


async def test_a_consumer_decodes_the_answered_row_under_any_session_time_zone(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens, kafka: KafkaSettings
) -> None:
    # asyncpg passes the URL's unknown parameters to the server as session settings.
    url = test_env["DATABASE_URL"] + "?timezone=Asia%2FKathmandu&DateStyle=SQL%2C%20DMY&lc_time=C"
    client: TestClient[Any, Any] = await serve(
        create_app(Config.from_env({**test_env, "DATABASE_URL": url})), tokens.admin()
    )
    assert await client.app[DB_POOL].fetchval("SHOW timezone") == "Asia/Kathmandu"
    answers = []
    for last_name in (HOSTILE, "x" * 255):
        body = {"customer": {"name": HOSTILE, "last_name": last_name, "email": "Mixed.Case@Example.io"}}
        resp = await client.post("/customers", json=body)
        assert resp.status == 201, await resp.text()
        assert resp.headers["X-Events-Delivered"] == "true"
        answers.append(await resp.json())
    messages = await read_topic(kafka, "customers", min_count=2)
    assert [(m.key, m.value, m.headers["event_type"]) for m in messages] == [
        (str(a["id"]), {**a, "action": "created"}, "customer_created") for a in answers
    ]
    assert all(list(m.value or {}) == [*a, "action"] for m, a in zip(messages, answers, strict=True))
    assert all(a["created_at"].endswith("Z") and a["email"] == "mixed.case@example.io" for a in answers)


async def test_a_customer_of_an_organization_deleted_meanwhile_is_refused_with_nothing_written(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    org = await (await c.post("/organizations", json={"organization": {"name": "Doomed"}})).json()
    pool: asyncpg.Pool = c.app[DB_POOL]
    body = {"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": org["id"]}}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM organizations WHERE id = $1", org["id"])
        post = asyncio.create_task(c.post("/customers", json=body))

        async def insert_waits_for_the_delete() -> bool:
            return bool(
                await pool.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO customers%'"""
                )
            )

        await wait_until(insert_waits_for_the_delete)
    resp = await post
    assert resp.status == 422, await resp.text()
    assert [(e["field"], e["problem"]) for e in (await resp.json())["errors"]] == [
        ("customer.organization_id", f"no organization with id {org['id']}")
    ]
    assert await pool.fetchval("SELECT count(*) FROM customers") == 0
    # The outbox first, then the topic: an event that left the outbox is in the topic by then.
    assert await pool.fetchval("SELECT count(*) FROM kafka_outbox WHERE topic = 'customers'") == 0
    assert await read_topic(kafka, "customers", timeout=0) == []


async def test_a_customer_whose_event_is_over_the_limit_is_refused_naming_no_made_up_key(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens, kafka: KafkaSettings
) -> None:
    """The size is checked before the INSERT, with the longest id the database could give: the
    answer must not present that stand-in as the customer's key."""
    client: TestClient[Any, Any] = await serve(
        create_app(Config.from_env({**test_env, "KAFKA_MAX_EVENT_BYTES": "1024"})), tokens.admin()
    )
    body = {"customer": {"name": "漢" * 255, "last_name": "字" * 255, "email": "j@d.io"}}
    resp = await client.post("/customers", json=body)
    assert resp.status == 413, await resp.text()
    detail = (await resp.json())["detail"]
    assert "limit of 1024 bytes" in detail and "new customer" in detail
    assert str(-(2**63)) not in detail
    pool: asyncpg.Pool = client.app[DB_POOL]
    assert await pool.fetchval("SELECT count(*) FROM customers") == 0
    assert await pool.fetchval("SELECT count(*) FROM kafka_outbox") == 0
    assert await read_topic(kafka, "customers", timeout=0) == []
