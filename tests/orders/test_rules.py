"""What the orders service refuses: unknown parties, bad fields, bad tokens, other organizations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from orders.app import create_app
from orders.config import Config
from tests.support import Tokens, assert_rejects_bad_tokens, read_topic, write_signing_keys


def order(org_id: int, customer_id: int, /, **changes: Any) -> dict[str, Any]:
    return {
        "po": "po002",
        "organization_id": org_id,
        "customer_id": customer_id,
        "date": "2022-05-07T07:50:03-00:00",
        "deliver_date": "2022-05-07T07:53:03-00:00",
        "state": "pending",
        **changes,
    }


async def _counts(env: dict[str, str]) -> tuple[int, int, int]:
    conn = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": env["DATABASE_SCHEMA"]})
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM orders"),
            await conn.fetchval("SELECT count(*) FROM invoices"),
            await conn.fetchval("SELECT count(*) FROM items"),
        )
    finally:
        await conn.close()


async def _nothing_written(env: dict[str, str], kafka: KafkaSettings) -> None:
    assert await _counts(env) == (0, 0, 0)
    for topic in ("orders", "invoices"):
        assert await read_topic(kafka, topic, timeout=0) == []


ITEM = {"quantity": 1, "description": "Widget", "code": "W", "amount": 1.5}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"deliver_date": "2022-05-07T07:50:03-00:00"}, ["deliver_date must be after date"]),
        ({"deliver_date": "2022-05-06T07:50:03-00:00"}, ["deliver_date must be after date"]),
        ({"items": [{**ITEM, "quantity": -1}]}, ["order.items.0.quantity", "greater than 0"]),
        ({"items": [{**ITEM, "quantity": 0}]}, ["order.items.0.quantity"]),
        ({"items": [{**ITEM, "amount": 1.005}]}, ["order.items.0.amount", "2 decimal places"]),
        ({"items": [{**ITEM, "amount": "12.345"}]}, ["order.items.0.amount", "2 decimal places"]),
        ({"items": [{**ITEM, "amount": -3}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": "NaN"}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "code": ""}]}, ["order.items.0.code"]),
        ({"date": "yesterday"}, ["order.date", "ISO 8601"]),
        ({"date": "2022-05-07T07:50:03"}, ["order.date", "time zone"]),
        ({"organization_id": "13"}, ["order.organization_id"]),
        ({"customer_id": None}, ["order.customer_id"]),
        ({"customer_id": 2**63}, ["order.customer_id", "less than or equal to 9223372036854775807"]),
        ({"organization_id": 2**63}, ["order.organization_id", "less than or equal"]),
        ({"po": "x" * 10_000}, ["order.po", "255"]),
        ({"surprise": 1}, ["order.surprise"]),
        # ids: past bigint, negative, zero, float, boolean, string
        ({"organization_id": 2**63}, ["order.organization_id", "less than or equal to 9223372036854775807"]),
        ({"customer_id": 2**64 - 1}, ["order.customer_id"]),
        ({"customer_id": -5}, ["order.customer_id"]),
        ({"customer_id": 0}, ["order.customer_id"]),
        ({"customer_id": 1.0}, ["order.customer_id"]),
        ({"customer_id": True}, ["order.customer_id"]),
        ({"organization_id": None}, ["order.organization_id"]),
        ({"date": None}, ["order.date"]),
        ({"state": None}, ["order.state"]),
        # dates that overflow once in UTC
        (
            {"date": "9999-12-31T23:00:00-05:00", "deliver_date": "9999-12-31T23:30:00-05:00"},
            ["order.date", "out of range"],
        ),
        ({"date": "0001-01-01T00:00:00+05:00"}, ["order.date", "out of range"]),
        ({"date": "2022-05-07T07:50:03+25:00"}, ["order.date"]),
        # decimals: non-finite, huge, tiny, a total past numeric(13,2)
        ({"items": [{**ITEM, "amount": "Infinity"}]}, ["order.items.0.amount", "finite"]),
        ({"items": [{**ITEM, "amount": "-Infinity"}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": "sNaN"}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": "1e400"}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": "1e-400"}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": 1e308}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "amount": True}]}, ["order.items.0.amount"]),
        ({"items": [{**ITEM, "quantity": 2**63}]}, ["order.items.0.quantity"]),
        ({"items": [{**ITEM, "quantity": None}]}, ["order.items.0.quantity"]),
        (
            {"items": [{**ITEM, "quantity": 1_000_000, "amount": "999999999.99"}] * 2},
            ["order.items", "total", "99999999999.99"],
        ),
        # text: control characters (C0, DEL, C1, line separator), too long
        ({"po": "a\u0000b"}, ["order.po", "control characters"]),
        ({"po": "a\rBcc: x@y.io"}, ["order.po", "control characters"]),
        ({"po": "a\u007fb"}, ["order.po", "control characters"]),
        ({"po": "a\u0085b"}, ["order.po", "control characters"]),
        ({"po": "a\u2028b"}, ["order.po", "control characters"]),
        ({"items": [{**ITEM, "description": "d" * 256}]}, ["order.items.0.description", "255"]),
        ({"items": [ITEM] * 201}, ["order.items", "200"]),
        ({"items": {"0": ITEM}}, ["order.items"]),
    ],
)
async def test_bad_orders_are_refused_and_nothing_is_written(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    changes: dict[str, Any],
    words: list[str],
) -> None:
    resp = await orders_client.post("/orders", json=order(*parties, **changes))
    assert resp.status == 422
    text = str(await resp.json())
    for word in words:
        assert word in text
    await _nothing_written(test_env, kafka)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/orders", b"{not json", 400),
        ("POST", "/orders", b"\xff\xfe", 400),
        ("POST", "/orders", b"[]", 422),
        ("POST", "/orders", b'{"order": {}}', 422),
        ("POST", "/orders", b'{"po": "p", ' + b'"x": "' + b"a" * 70_000 + b'"}', 413),
        ("GET", "/orders/999999", b"", 404),
        ("GET", "/orders/abc", b"", 404),
        ("PUT", "/orders/999999", b'{"order": {"state": "shipped"}}', 404),
        ("PUT", "/orders/1", b'{"order": {}}', 422),
        ("DELETE", "/invoices/999999", b"", 404),
        ("POST", "/invoices", b'{"invoice": {"order_id": -1}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": 9223372036854775808}}', 422),
        ("PUT", "/orders/1", b'{"order": {"customer_id": 9223372036854775808}}', 422),
        (
            "POST",
            "/orders/999999/items",
            b'{"item": ' + b'{"quantity": 1, "description": "d", "code": "c", "amount": 1}}',
            404,
        ),
        ("GET", "/orders?limit=many", b"", 422),
        # ids in paths: past bigint, negative, float, boolean, signs and separators int() would take
        ("GET", "/orders/9223372036854775808", b"", 404),
        ("GET", "/orders/-1", b"", 404),
        ("GET", "/orders/1.5", b"", 404),
        ("GET", "/orders/true", b"", 404),
        ("GET", "/orders/+1", b"", 404),
        ("GET", "/orders/1_0", b"", 404),
        ("DELETE", "/orders/99999999999999999999999999", b"", 404),
        ("PUT", "/invoices/1/items/9223372036854775808", b'{"item": {"quantity": 2}}', 404),
        ("GET", "/orders?after=9223372036854775808", b"", 422),
        # cursors: a page of none would answer `next: null` (the end) for a list that goes on
        ("GET", "/orders?limit=0", b"", 422),
        ("GET", "/invoices?limit=0", b"", 422),
        ("GET", "/orders?limit=-1", b"", 422),
        ("GET", "/orders?limit=1001", b"", 422),
        ("GET", "/orders?after=1%00", b"", 422),
        ("GET", "/orders?after=%0d%0aX:1", b"", 422),
        ("GET", "/orders?after=" + "9" * 4000, b"", 422),
        ("GET", "/orders?after=", b"", 422),
        ("GET", "/orders?after=1&after=x", b"", 422),
        # ids in bodies
        ("POST", "/invoices", b'{"invoice": {"order_id": 9223372036854775808}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": 18446744073709551616}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": true}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": "1"}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": 1.0}}', 422),
        ("POST", "/invoices", b'{"invoice": {"order_id": null}}', 422),
        # JSON the parsers disagree on or choke on
        ("POST", "/orders", b'{"order": {"po": "a", "po": "b"}}', 400),
        ("POST", "/invoices", b'{"order_id": 1, "order_id": 2}', 400),
        ("POST", "/orders", b'{"order": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
        ("POST", "/orders", b'{"order": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400),
        ("POST", "/orders", b'{"po": NaN}', 400),
        ("POST", "/orders", b'{"po": 1e400}', 400),
        ("POST", "/orders", b'{"po": "\\ud800"}', 400),
    ],
)
async def test_bad_requests_get_a_4xx_that_names_the_problem(
    orders_client: TestClient[Any, Any],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    method: str,
    path: str,
    body: bytes,
    status: int,
) -> None:
    resp = await orders_client.request(method, path, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == status
    answer = await resp.json()
    assert answer["type"] and answer["detail"]
    await _nothing_written(test_env, kafka)


async def test_an_order_for_unknown_parties_is_refused_until_they_exist(
    orders_client: TestClient[Any, Any],
    customers_client: TestClient[Any, Any],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    refused = await orders_client.post("/orders", json=order(424242, 434343))
    assert refused.status == 422
    fields = {f["field"] for f in (await refused.json())["errors"]}
    assert fields == {"order.organization_id", "order.customer_id"}
    await _nothing_written(test_env, kafka)
    # created a moment ago in the customers service: the order is accepted at once
    org = await (await customers_client.post("/organizations", json={"organization": {"name": "New"}})).json()
    customer = await (
        await customers_client.post(
            "/customers", json={"customer": {"name": "A", "last_name": "B", "email": "a@b.io"}}
        )
    ).json()
    assert (await orders_client.post("/orders", json=order(org["id"], customer["id"]))).status == 201
    # deleted there, and the deletion in Kafka when the answer came: refused here from the next order on
    deleted = await customers_client.delete(f"/customers/{customer['id']}")
    assert deleted.status == 204 and deleted.headers["X-Events-Delivered"] == "true"
    gone = await orders_client.post("/orders", json=order(org["id"], customer["id"]))
    assert gone.status == 422
    assert [f["field"] for f in (await gone.json())["errors"]] == ["order.customer_id"]


async def test_a_deleted_party_is_refused_by_the_very_next_order_every_time(
    orders_client: TestClient[Any, Any], customers_client: TestClient[Any, Any]
) -> None:
    """Read-your-writes across services: the orders service knows the customer (it has just
    accepted an order for it), so nothing but reading the topic to its end can show the deletion."""
    org = await (await customers_client.post("/organizations", json={"organization": {"name": "R"}})).json()
    for n in range(10):
        body = {"customer": {"name": f"R{n}", "last_name": "Y", "email": f"r{n}@example.com"}}
        customer = await (await customers_client.post("/customers", json=body)).json()
        assert (await orders_client.post("/orders", json=order(org["id"], customer["id"]))).status == 201
        deleted = await customers_client.delete(f"/customers/{customer['id']}")
        assert deleted.headers["X-Events-Delivered"] == "true"
        assert (await orders_client.post("/orders", json=order(org["id"], customer["id"]))).status == 422
    deleted = await customers_client.delete(f"/organizations/{org['id']}")
    assert deleted.headers["X-Events-Delivered"] == "true"
    assert (await orders_client.post("/orders", json=order(org["id"], 1))).status == 422


async def test_tokens_and_organization_access(
    test_env: dict[str, str],
    serve: Callable[..., Any],
    tokens: Tokens,
    tmp_path: Path,
    parties: tuple[int, int],
    customers_client: TestClient[Any, Any],
) -> None:
    anonymous = await serve(create_app(Config.from_env(test_env)))
    other_key = write_signing_keys(tmp_path / "other")["JWT_PRIVATE_KEY_FILE"]
    org_a, customer_id = parties
    for method, path, body in [
        ("GET", "/orders", None),
        ("POST", "/orders", order(org_a, customer_id)),
        ("GET", "/invoices/1", None),
        ("POST", "/orders/1/items", ITEM),
    ]:
        await assert_rejects_bad_tokens(anonymous, method, path, tokens, other_key, body)
    org_b = (
        await (await customers_client.post("/organizations", json={"organization": {"name": "B"}})).json()
    )["id"]
    admin = Tokens.header(tokens.admin())
    in_a = await (await anonymous.post("/orders", json=order(org_a, customer_id), headers=admin)).json()
    in_b = await (await anonymous.post("/orders", json=order(org_b, customer_id), headers=admin)).json()
    member_a = Tokens.header(tokens.make(user_id=7, orgs={org_a: "member"}))
    viewer_a = Tokens.header(tokens.make(user_id=8, orgs={org_a: "viewer"}))

    # a user reading another organization's orders and invoices
    for path in (f"/orders/{in_b['id']}", f"/invoices/{in_b['invoice_id']}", f"/orders/{in_b['id']}/items"):
        denied = await anonymous.get(path, headers=member_a)
        assert denied.status == 403, path
        assert (await denied.json())["type"] == "urn:problem-type:forbidden"
    assert [o["id"] for o in (await (await anonymous.get("/orders", headers=member_a)).json())["items"]] == [
        in_a["id"]
    ]
    assert [
        o["id"] for o in (await (await anonymous.get("/invoices", headers=viewer_a)).json())["items"]
    ] == [in_a["invoice_id"]]
    assert len((await (await anonymous.get("/orders", headers=admin)).json())["items"]) == 2
    assert (await anonymous.get(f"/orders/{in_a['id']}", headers=viewer_a)).status == 200
    # writing: a viewer may not, a member only in their organization, and may not move an order away
    assert (await anonymous.post("/orders", json=order(org_a, customer_id), headers=viewer_a)).status == 403
    assert (await anonymous.post("/orders", json=order(org_b, customer_id), headers=member_a)).status == 403
    assert (await anonymous.put(f"/orders/{in_b['id']}", json={"state": "x"}, headers=member_a)).status == 403
    moved = await anonymous.put(f"/orders/{in_a['id']}", json={"organization_id": org_b}, headers=member_a)
    assert moved.status == 403
    assert (await anonymous.delete(f"/invoices/{in_b['invoice_id']}", headers=member_a)).status == 403
    assert (await anonymous.post("/invoices", json={"order_id": in_b["id"]}, headers=member_a)).status == 403
    assert (await anonymous.post(f"/orders/{in_b['id']}/items", json=ITEM, headers=member_a)).status == 403
    # the customer belongs to no organization: a member of A may not order for it until A owns it
    assert (await anonymous.post("/orders", json=order(org_a, customer_id), headers=member_a)).status == 403
    given = await customers_client.put(
        f"/customers/{customer_id}", json={"customer": {"organization_id": org_a}}
    )
    assert given.status == 200
    assert (await anonymous.post("/orders", json=order(org_a, customer_id), headers=member_a)).status == 201
    still = await (await anonymous.get(f"/orders/{in_b['id']}", headers=admin)).json()
    assert still["state"] == "pending" and still["items"] == []


CHANGES = [
    # (path template, body, field named)
    ("/orders/{order}", {"date": None}, "order.date"),
    ("/orders/{order}", {"deliver_date": None}, "order.deliver_date"),
    ("/orders/{order}", {"customer_id": None}, "order.customer_id"),
    ("/orders/{order}", {"organization_id": None}, "order.organization_id"),
    ("/orders/{order}", {"state": None}, "order.state"),
    ("/orders/{order}", {"customer_id": 2**63}, "order.customer_id"),
    ("/orders/{order}", {"organization_id": -1}, "order.organization_id"),
    ("/orders/{order}", {"customer_id": False}, "order.customer_id"),
    ("/orders/{order}", {"date": "9999-12-31T23:00:00-05:00"}, "order.date"),
    ("/orders/{order}", {"deliver_date": "2022-05-07T07:00:00-00:00"}, "order.deliver_date"),
    ("/orders/{order}", {"po": "x\ny"}, "order.po"),
    ("/invoices/{invoice}", {"date": None}, "invoice.date"),
    ("/invoices/{invoice}", {"deliver_date": "9999-12-31T23:59:00-01:00"}, "invoice.deliver_date"),
    ("/invoices/{invoice}", {"total": "1"}, "invoice.total"),
    ("/orders/{order}/items/{order_item}", {"quantity": None}, "item.quantity"),
    ("/orders/{order}/items/{order_item}", {"amount": None}, "item.amount"),
    ("/orders/{order}/items/{order_item}", {"description": None}, "item.description"),
    ("/orders/{order}/items/{order_item}", {"amount": "NaN"}, "item.amount"),
    ("/invoices/{invoice}/items/{invoice_item}", {"quantity": 1_000_000}, "item"),
    ("/invoices/{invoice}/items/{invoice_item}", {"quantity": None}, "item.quantity"),
    ("/invoices/{invoice}/items/{invoice_item}", {"code": "c" * 256}, "item.code"),
]


@pytest.mark.parametrize(("path", "body", "field"), CHANGES)
async def test_bad_changes_to_an_order_are_refused_and_change_nothing(
    orders_client: TestClient[Any, Any],
    parties: tuple[int, int],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    big = {**ITEM, "quantity": 1000, "amount": "99999999.99"}
    placed = await (await orders_client.post("/orders", json=order(*parties, items=[big]))).json()
    invoice = await (await orders_client.get(f"/invoices/{placed['invoice_id']}")).json()
    ids = {
        "order": placed["id"],
        "invoice": invoice["id"],
        "order_item": placed["items"][0]["id"],
        "invoice_item": invoice["items"][0]["id"],
    }
    resp = await orders_client.put(path.format(**ids), json=body)
    assert resp.status == 422, await resp.text()
    answer = await resp.json()
    assert field in [f["field"] for f in answer["errors"]], answer
    assert await (await orders_client.get(f"/orders/{placed['id']}")).json() == placed
    assert await (await orders_client.get(f"/invoices/{invoice['id']}")).json() == invoice
    assert len(await read_topic(kafka, "orders", timeout=0)) == 1
    assert len(await read_topic(kafka, "invoices", timeout=0)) == 1
