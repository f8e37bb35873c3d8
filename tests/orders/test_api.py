"""The seed's orders calls, with invoices and items, and the events they put on Kafka."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.support import read_topic

JSON = {"Content-Type": "application/json"}


def seed_order(org_id: int, customer_id: int) -> str:
    return f"""{{
  "po": "po002",
  "organization_id": {org_id},
  "customer_id": {customer_id},
  "date": "2022-05-07T07:50:03-00:00",
  "deliver_date": "2022-05-07T07:53:03-00:00",
  "state": "pending"
}}"""


async def test_the_seeds_generate_some_content_sequence(
    customers_client: TestClient[Any, Any], orders_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    for body in (
        '{ "organization": {"name": "SuperCompany" }}',
        '{ "organization": {"name": "SomeCompany" }}',
    ):
        assert (await c.post("/organizations", data=body, headers=JSON)).status == 201
    org = ((await (await c.get("/organizations")).json())["items"])[0]
    john = await c.post(
        "/customers",
        data='{ "customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}',
        headers=JSON,
    )
    customer = await john.json()
    matt = '{ "customer": {"name": "Matt", "last_name": "Berrueta", "email": "mberrueta@gmail.com"}}'
    assert (await c.post("/customers", data=matt, headers=JSON)).status == 201
    renamed = await c.put(
        f"/organizations/{org['id']}", data='{ "organization": {"name": "SuperCompany Tech" }}', headers=JSON
    )
    assert renamed.status == 200

    placed = await orders_client.post("/orders", data=seed_order(org["id"], customer["id"]), headers=JSON)
    assert placed.status == 201, await placed.text()
    assert placed.headers["X-Events-Delivered"] == "true"
    order = await placed.json()
    assert order["po"] == "po002" and order["state"] == "pending" and order["items"] == []
    assert order["date"] == "2022-05-07T07:50:03Z"
    assert isinstance(order["invoice_id"], int)

    orders = await read_topic(kafka, "orders", min_count=1)
    invoices = await read_topic(kafka, "invoices", min_count=1)
    assert [(m.key, m.value["action"], m.headers["event_type"]) for m in orders] == [
        (str(order["id"]), "created", "order_created")
    ]
    assert (
        orders[0].value["organization_id"] == org["id"] and orders[0].value["customer_id"] == customer["id"]
    )
    assert [(m.key, m.value["action"], m.value["order_id"]) for m in invoices] == [
        (str(order["invoice_id"]), "created", order["id"])
    ]
    assert invoices[0].value["po"] == "po002" and invoices[0].value["total"] == "0.00"
    assert invoices[0].headers["event_type"] == "invoice_created"


async def test_wrapped_body_with_items_issues_an_invoice_with_the_total(
    orders_client: TestClient[Any, Any], parties: tuple[int, int], kafka: KafkaSettings
) -> None:
    org_id, customer_id = parties
    items = [
        {"quantity": 2, "description": "Widget", "code": "W-1", "amount": 19.99},
        {"quantity": 3, "description": "Gadget", "code": "G-1", "amount": "0.10"},
    ]
    body = {
        "order": {
            "po": "po003",
            "organization_id": org_id,
            "customer_id": customer_id,
            "date": "2022-05-07T07:50:03Z",
            "deliver_date": "2022-05-08T07:50:03Z",
            "state": "pending",
            "items": items,
        }
    }
    placed = await orders_client.post("/orders", json=body)
    assert placed.status == 201, await placed.text()
    order = await placed.json()
    assert [(i["code"], i["amount"]) for i in order["items"]] == [("W-1", "19.99"), ("G-1", "0.10")]
    invoice = await (await orders_client.get(f"/invoices/{order['invoice_id']}")).json()
    assert Decimal(invoice["total"]) == Decimal("40.28")
    assert [i["code"] for i in invoice["items"]] == ["W-1", "G-1"]
    assert [
        i["code"]
        for i in (await (await orders_client.get(f"/invoices/{invoice['id']}/items")).json())["items"]
    ] == [
        "W-1",
        "G-1",
    ]
    events = await read_topic(kafka, "invoices", min_count=1)
    assert events[0].value["total"] == "40.28"
    assert [i["amount"] for i in events[0].value["items"]] == ["19.99", "0.10"]


async def test_items_change_the_invoice_total_and_emit_updates(
    orders_client: TestClient[Any, Any], parties: tuple[int, int], kafka: KafkaSettings
) -> None:
    org_id, customer_id = parties
    order = await (
        await orders_client.post("/orders", data=seed_order(org_id, customer_id), headers=JSON)
    ).json()
    path = f"/invoices/{order['invoice_id']}/items"
    added = await orders_client.post(
        path, json={"item": {"quantity": 4, "description": "Bolt", "code": "B", "amount": 2.5}}
    )
    assert added.status == 201
    item = await added.json()
    changed = await orders_client.patch(f"{path}/{item['id']}", json={"item": {"quantity": 5}})
    assert changed.status == 200
    nothing = await orders_client.patch(f"{path}/{item['id']}", json={"item": {}})
    assert nothing.status == 422 and "at least one" in str(await nothing.json())
    assert (await (await orders_client.get(f"/invoices/{order['invoice_id']}")).json())["total"] == "12.50"
    assert (await orders_client.delete(f"{path}/{item['id']}")).status == 204
    assert (await (await orders_client.get(f"/invoices/{order['invoice_id']}")).json())["total"] == "0.00"
    totals = [m.value["total"] for m in await read_topic(kafka, "invoices", min_count=4)]
    assert totals == ["0.00", "10.00", "12.50", "0.00"]
    order_item = await orders_client.post(
        f"/orders/{order['id']}/items", json={"quantity": 1, "description": "Nut", "code": "N", "amount": 1}
    )
    assert order_item.status == 201
    assert [
        i["code"] for i in (await (await orders_client.get(f"/orders/{order['id']}")).json())["items"]
    ] == ["N"]


async def test_post_invoices_issues_one_for_an_order_once(
    orders_client: TestClient[Any, Any], parties: tuple[int, int], kafka: KafkaSettings
) -> None:
    org_id, customer_id = parties
    order = await (
        await orders_client.post("/orders", data=seed_order(org_id, customer_id), headers=JSON)
    ).json()
    again = await orders_client.post("/invoices", json={"invoice": {"order_id": order["id"]}})
    assert again.status == 409
    assert (await orders_client.delete(f"/invoices/{order['invoice_id']}")).status == 204
    issued = await orders_client.post("/invoices", json={"order_id": order["id"]})
    assert issued.status == 201
    invoice = await issued.json()
    assert invoice["order_id"] == order["id"] and invoice["po"] == "po002"
    assert (await (await orders_client.get(f"/orders/{order['id']}")).json())["invoice_id"] == invoice["id"]
    missing = await orders_client.post("/invoices", json={"invoice": {"order_id": 999999}})
    assert missing.status == 422
    assert "order_id" in str(await missing.json())
    actions = [(m.value or {}).get("action") for m in await read_topic(kafka, "invoices", min_count=4)]
    assert actions.count("created") == 2 and actions.count("destroyed") == 1


async def test_update_and_delete_an_order_with_its_invoice(
    orders_client: TestClient[Any, Any], parties: tuple[int, int], kafka: KafkaSettings
) -> None:
    org_id, customer_id = parties
    order = await (
        await orders_client.post("/orders", data=seed_order(org_id, customer_id), headers=JSON)
    ).json()
    changed = await orders_client.put(f"/orders/{order['id']}", json={"order": {"state": "shipped"}})
    assert changed.status == 200
    assert (await changed.json())["state"] == "shipped"
    listed = (await (await orders_client.get("/orders")).json())["items"]
    assert [o["id"] for o in listed] == [order["id"]]
    assert (await orders_client.delete(f"/orders/{order['id']}")).status == 204
    assert (await orders_client.get(f"/orders/{order['id']}")).status == 404
    assert (await orders_client.get(f"/invoices/{order['invoice_id']}")).status == 404
    actions = [(m.value or {}).get("action") for m in await read_topic(kafka, "orders", min_count=4)]
    assert actions == ["created", "updated", "destroyed", None]


ORDER_FIELDS = ["id", "po", "organization_id", "customer_id", "date", "deliver_date", "state"]
ITEM_FIELDS = ["id", "quantity", "description", "code", "amount", "created_at", "updated_at"]


async def test_created_events_carry_the_rows_as_stored_fields_in_table_order(
    orders_client: TestClient[Any, Any], parties: tuple[int, int], kafka: KafkaSettings
) -> None:
    """The order, its invoice and the items of both are written in one statement: the events
    still carry each table's columns in table order (consumers and the compacted topics see the
    same bytes as before), the order's items get their ids before the invoice's copies, each in
    the body's order, and the answer is the order's event without its action."""
    items = [
        {"quantity": 2, "description": "Widget", "code": "W-1", "amount": "19.9"},
        {"quantity": 1, "description": "é\u00a0ü 🚀", "code": "G", "amount": "1E+2"},
        {"quantity": 3, "description": "Nut", "code": "N", "amount": 0},
    ]
    body = {**json.loads(seed_order(*parties)), "items": items}
    placed = await orders_client.post("/orders", json=body)
    assert placed.status == 201, await placed.text()
    answer = await placed.json()
    (ordered,) = [m.value for m in await read_topic(kafka, "orders", min_count=1)]
    (invoiced,) = [m.value for m in await read_topic(kafka, "invoices", min_count=1)]
    assert list(ordered) == [*ORDER_FIELDS, "created_at", "updated_at", "items", "invoice_id", "action"]
    assert list(invoiced) == [
        "id",
        "order_id",
        *ORDER_FIELDS[1:],
        "total",
        "created_at",
        "updated_at",
        "items",
        "action",
    ]
    assert {**answer, "action": "created"} == ordered
    assert ordered["invoice_id"] == invoiced["id"] and invoiced["order_id"] == ordered["id"]
    assert invoiced["total"] == "139.80"
    assert all(list(i) == ITEM_FIELDS for i in ordered["items"] + invoiced["items"])
    assert [i["amount"] for i in ordered["items"]] == ["19.90", "100.00", "0.00"]

    def copy(item: dict[str, Any]) -> list[Any]:
        return [item[f] for f in ("quantity", "description", "code", "amount")]

    assert [copy(i) for i in invoiced["items"]] == [copy(i) for i in ordered["items"]]
    ids = [i["id"] for i in ordered["items"] + invoiced["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert {invoiced["created_at"], *(i["created_at"] for i in invoiced["items"])} == {ordered["created_at"]}
