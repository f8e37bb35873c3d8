"""What keeps an order's event publishable: at most MAX_ITEMS items per order and invoice in
every write path (parallel adds cannot both pass), a total that fits numeric(13,2), and the
encoded event under the size limit. A refused write answers 4xx and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from orders.app import create_app
from orders.config import Config
from orders.models import MAX_ITEMS
from tests.orders.test_rules import ITEM, _counts, _nothing_written, order
from tests.support import Tokens, read_topic


async def _outbox_and_items(env: dict[str, str], parent: str, parent_id: int) -> tuple[int, int]:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM kafka_outbox"),
            await conn.fetchval(
                "SELECT count(*) FROM items WHERE itemable_type = $1 AND itemable_id = $2", parent, parent_id
            ),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("parent", ["orders", "invoices"])
async def test_parallel_adds_at_the_cap_let_exactly_one_through(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    parent: str,
) -> None:
    created = await orders_client.post("/orders", json=order(*parties, items=[ITEM] * (MAX_ITEMS - 1)))
    assert created.status == 201, await created.text()
    placed = await created.json()
    ident = placed["id"] if parent == "orders" else placed["invoice_id"]
    answers = await asyncio.gather(
        *(orders_client.post(f"/{parent}/{ident}/items", json={"item": ITEM}) for _ in range(6))
    )
    assert sorted(a.status for a in answers) == [201] + [422] * 5
    refused = [await a.json() for a in answers if a.status == 422]
    assert all(r["errors"][0]["field"] == "item" and f"at most {MAX_ITEMS}" in r["detail"] for r in refused)
    again = await orders_client.post(f"/{parent}/{ident}/items", json=ITEM)
    assert again.status == 422
    itemable = "Order" if parent == "orders" else "Invoice"
    assert (await _outbox_and_items(test_env, itemable, ident))[1] == MAX_ITEMS
    # the one add that passed published one update; the refused ones nothing
    events = await read_topic(kafka, parent, min_count=2)
    assert [m.value["action"] for m in events if m.key == str(ident)] == ["created", "updated"]
    assert len(events[-1].value["items"]) == MAX_ITEMS
    # too many at creation: refused by the body's model, nothing written
    too_many = await orders_client.post("/orders", json=order(*parties, items=[ITEM] * (MAX_ITEMS + 1)))
    assert too_many.status == 422 and "order.items" in await too_many.text()


async def test_a_total_past_numeric_13_2_is_refused_in_every_item_write(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    big = {**ITEM, "quantity": 1_000_000, "amount": "999999999.99"}  # 999,999,999,990,000.00
    refused = await orders_client.post("/orders", json=order(*parties, items=[big]))
    assert refused.status == 422
    assert (await refused.json())["errors"][0]["field"] == "order.items"
    assert "total" in (await refused.json())["detail"]
    await _nothing_written(test_env, kafka)

    near = {**ITEM, "quantity": 100, "amount": "999999999.99"}  # 99,999,999,999.00: fits
    placed = await (await orders_client.post("/orders", json=order(*parties, items=[near]))).json()
    assert placed["items"][0]["amount"] == "999999999.99"
    invoice = await (await orders_client.get(f"/invoices/{placed['invoice_id']}")).json()
    assert invoice["total"] == "99999999999.00"
    before = await _counts(test_env)
    outbox = await _outbox_and_items(test_env, "Invoice", invoice["id"])
    for path in (f"/orders/{placed['id']}/items", f"/invoices/{invoice['id']}/items"):
        added = await orders_client.post(path, json={**ITEM, "amount": 1})
        assert added.status == 422, path
        assert "the most is 99999999999.99" in (await added.json())["detail"]
    item_id = invoice["items"][0]["id"]
    changed = await orders_client.put(f"/invoices/{invoice['id']}/items/{item_id}", json={"quantity": 101})
    assert changed.status == 422
    assert await _counts(test_env) == before
    assert await _outbox_and_items(test_env, "Invoice", invoice["id"]) == outbox
    assert (await (await orders_client.get(f"/invoices/{invoice['id']}")).json())["total"] == "99999999999.00"


@pytest.fixture
async def small_events(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    """The orders service with events limited to 20,000 bytes."""
    config = Config.from_env({**test_env, "KAFKA_MAX_EVENT_BYTES": "20000"})
    client: TestClient[Any, Any] = await serve(create_app(config), tokens.admin())
    return client


async def test_an_order_whose_event_would_be_too_large_is_refused_and_nothing_is_written(
    small_events: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    long_item = {**ITEM, "description": "d" * 255, "code": "c" * 255}
    refused = await small_events.post("/orders", json=order(*parties, items=[long_item] * 60))
    assert refused.status == 413
    answer = await refused.json()
    assert "over the limit of 20000 bytes" in answer["detail"] and "nothing was written" in answer["detail"]
    await _nothing_written(test_env, kafka)
    assert (await _outbox_and_items(test_env, "Order", 1))[0] == 0
    # an order that fits, grown item by item until its event would not: the last add is refused
    placed = await (await small_events.post("/orders", json=order(*parties, items=[long_item] * 10))).json()
    statuses = []
    for _ in range(40):
        statuses.append((await small_events.post(f"/orders/{placed['id']}/items", json=long_item)).status)
        if statuses[-1] != 201:
            break
    assert statuses[-1] == 413 and set(statuses[:-1]) == {201}
    _, items = await _outbox_and_items(test_env, "Order", placed["id"])
    assert items == 10 + len(statuses) - 1
    current = await (await small_events.get(f"/orders/{placed['id']}")).json()
    assert len(current["items"]) == items
