"""An order and its invoice written from the inserts' answers (orders.db: the invoice's total
computed in Python from the order's stored items, the item rules checked on the rows inserted):
whatever valid items a caller sends, the invoice's total, its items and its event agree with what
PostgreSQL computes from the stored rows, at the edges of every column; one cent past the
largest total, nothing at all is written (no order, invoice, item or outbox row)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from orders.models import MAX_ITEMS, MAX_TOTAL
from tests.orders.test_rules import ITEM, _counts, _nothing_written, order
from tests.support import read_topic

EDGES = [
    {**ITEM, "quantity": 1_000_000, "amount": "0.01"},
    {**ITEM, "quantity": 1, "amount": "999999999.99"},
    {**ITEM, "quantity": 3, "amount": "1E+2"},  # 100.00 as stored
    {**ITEM, "quantity": 7, "amount": "-0"},  # 0.00
    {**ITEM, "quantity": 2, "amount": 0.1},  # the float 0.1, read as 0.10
    {**ITEM, "quantity": 999_999, "amount": 19.99, "description": "é\u00a0ü 🚀", "code": "x" * 255},
]


async def _stored(env: dict[str, str], invoice_id: int) -> tuple[Decimal, Decimal, int, int]:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        total = await conn.fetchval("SELECT total FROM invoices WHERE id = $1", invoice_id)
        summed = await conn.fetchval(
            "SELECT sum(quantity * amount) FROM items WHERE itemable_type = 'Invoice' AND itemable_id = $1",
            invoice_id,
        )
        outbox = await conn.fetchval("SELECT count(*) FROM kafka_outbox")
        orders = await conn.fetchval("SELECT count(*) FROM orders")
        return total, summed, outbox, orders
    finally:
        await conn.close()


async def test_the_invoice_total_items_and_event_agree_with_the_stored_rows_at_every_edge(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    # 200 items: the edges, then what brings them to exactly the largest total allowed, then zeros
    items: list[dict[str, Any]] = [*EDGES]
    so_far = sum(Decimal(str(i["quantity"])) * Decimal(str(i["amount"])) for i in items)
    rest = MAX_TOTAL - so_far
    hundredth = (rest / 100).quantize(Decimal("0.01"), rounding="ROUND_FLOOR")
    items += [{**ITEM, "quantity": 100, "amount": str(hundredth)}]
    items += [{**ITEM, "quantity": 1, "amount": str(rest - 100 * hundredth)}]
    items += [{**ITEM, "quantity": 1, "amount": "0.00"}] * (MAX_ITEMS - len(items))
    assert len(items) == MAX_ITEMS

    created = await orders_client.post("/orders", json=order(*parties, items=items))
    assert created.status == 201, await created.text()
    placed = await created.json()
    invoice = await (await orders_client.get(f"/invoices/{placed['invoice_id']}")).json()
    total, summed, _, _ = await _stored(test_env, invoice["id"])
    assert total == summed == MAX_TOTAL
    assert Decimal(invoice["total"]) == MAX_TOTAL
    assert [(i["quantity"], Decimal(i["amount"])) for i in invoice["items"]] == [
        (i["quantity"], Decimal(str(i["amount"]))) for i in items
    ]
    assert [i["amount"] for i in placed["items"][:5]] == ["0.01", "999999999.99", "100.00", "0.00", "0.10"]
    assert placed["items"][5]["description"] == "é\u00a0ü 🚀"
    events = {m.key: m.value for m in await read_topic(kafka, "invoices", min_count=1)}
    assert events[str(invoice["id"])]["total"] == "99999999999.99"
    assert [i["amount"] for i in events[str(invoice["id"])]["items"]] == [
        i["amount"] for i in placed["items"]
    ]
    ordered = {m.key: m.value for m in await read_topic(kafka, "orders", min_count=1)}
    assert ordered[str(placed["id"])]["invoice_id"] == invoice["id"]
    assert ordered[str(placed["id"])]["items"] == placed["items"]


async def test_one_cent_past_the_largest_total_writes_nothing_at_all(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    """The order's items are inserted before their rules are checked on the rows inserted: a
    refusal must roll the order back with them, and leave no outbox row."""
    items = [{**ITEM, "quantity": 100, "amount": "999999999.99"}, {**ITEM, "quantity": 1, "amount": "1.00"}]
    refused = await orders_client.post("/orders", json=order(*parties, items=items))
    assert refused.status == 422, await refused.text()
    answer = await refused.json()
    assert answer["errors"][0]["field"] == "order.items" and "100000000000.00" in answer["detail"]
    await _nothing_written(test_env, kafka)
    conn = await asyncpg.connect(
        test_env["DATABASE_URL"], server_settings={"search_path": test_env["DATABASE_SCHEMA"]}
    )
    try:
        assert await conn.fetchval("SELECT count(*) FROM kafka_outbox") == 0
    finally:
        await conn.close()
    assert await _counts(test_env) == (0, 0, 0)
