"""Members order only for customers their organization owns or has a ready invitation of; the
orders service learns both from the topics, never by calling the customers service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from orders.app import create_app
from orders.config import Config
from tests.orders.test_rules import order
from tests.support import Tokens, read_topic


@pytest.fixture
async def world(
    customers_client: TestClient[Any, Any],
    tokens: Tokens,
    test_env: dict[str, str],
    serve: Callable[..., Any],
) -> dict[str, Any]:
    """Organizations A and B, a customer owned by each, a member of each, and the orders service
    called with no token of its own."""
    orgs = []
    for name in ("A", "B"):
        resp = await customers_client.post("/organizations", json={"organization": {"name": name}})
        orgs.append((await resp.json())["id"])
    a, b = orgs
    customers = []
    for org in orgs:
        body = {
            "customer": {"name": "C", "last_name": str(org), "email": f"c{org}@x.io", "organization_id": org}
        }
        customers.append((await (await customers_client.post("/customers", json=body)).json())["id"])
    return {
        "a": a,
        "b": b,
        "customer_a": customers[0],
        "customer_b": customers[1],
        "member_a": Tokens.header(tokens.make(user_id=20, orgs={a: "member"})),
        "member_b": Tokens.header(tokens.make(user_id=21, orgs={b: "member"})),
        "admin": Tokens.header(tokens.admin()),
        "orders": await serve(create_app(Config.from_env(test_env))),
    }


async def _order_events(kafka: KafkaSettings) -> list[Any]:
    return [m.value for m in await read_topic(kafka, "orders", timeout=0)]


async def test_a_member_cannot_order_for_another_organizations_customer(
    world: dict[str, Any], kafka: KafkaSettings
) -> None:
    orders, a = world["orders"], world["a"]
    refused = await orders.post("/orders", json=order(a, world["customer_b"]), headers=world["member_a"])
    assert refused.status == 403
    assert "customer_id" in (await refused.json())["detail"]
    assert (await (await orders.get("/orders", headers=world["admin"])).json())["items"] == []
    assert await _order_events(kafka) == []
    mine = await orders.post("/orders", json=order(a, world["customer_a"]), headers=world["member_a"])
    assert mine.status == 201
    # nor move an order of theirs to that customer
    moved = await orders.put(
        f"/orders/{(await mine.json())['id']}",
        json={"customer_id": world["customer_b"]},
        headers=world["member_a"],
    )
    assert moved.status == 403
    kept = await (await orders.get(f"/orders/{(await mine.json())['id']}", headers=world["admin"])).json()
    assert kept["customer_id"] == world["customer_a"]
    # administrators order for any customer
    assert (
        await orders.post("/orders", json=order(a, world["customer_b"]), headers=world["admin"])
    ).status == 201


@pytest.mark.parametrize("answer", [None, "reject"])
async def test_a_pending_or_rejected_invitation_does_not_let_a_member_order(
    world: dict[str, Any], customers_client: TestClient[Any, Any], kafka: KafkaSettings, answer: str | None
) -> None:
    invitations = f"/organizations/{world['a']}/organization_associations"
    invited = await customers_client.post(invitations, json={"invite": {"customer_id": world["customer_b"]}})
    if answer is not None:
        assert (
            await customers_client.post(f"{invitations}/{(await invited.json())['id']}/{answer}")
        ).status == 200
    resp = await world["orders"].post(
        "/orders", json=order(world["a"], world["customer_b"]), headers=world["member_a"]
    )
    assert resp.status == 403
    assert await _order_events(kafka) == []


async def test_a_ready_invitation_lets_the_organization_order_for_the_customer(
    world: dict[str, Any], customers_client: TestClient[Any, Any]
) -> None:
    orders, a, customer_b = world["orders"], world["a"], world["customer_b"]
    mine = await (
        await orders.post("/orders", json=order(a, world["customer_a"]), headers=world["member_a"])
    ).json()
    invitations = f"/organizations/{a}/organization_associations"
    invited = await (
        await customers_client.post(invitations, json={"invite": {"customer_id": customer_b}})
    ).json()
    accept = f"{invitations}/{invited['id']}/accept"
    assert (await customers_client.post(accept, headers=world["member_b"])).status == 200
    # accepted a moment ago: the order is accepted at once
    assert (await orders.post("/orders", json=order(a, customer_b), headers=world["member_a"])).status == 201
    moved = await orders.put(
        f"/orders/{mine['id']}", json={"customer_id": customer_b}, headers=world["member_a"]
    )
    assert moved.status == 200, await moved.text()
    # the invitation withdrawn: refused again
    assert (await customers_client.delete(f"{invitations}/{invited['id']}")).status == 204
    assert (await orders.post("/orders", json=order(a, customer_b), headers=world["member_a"])).status == 403
