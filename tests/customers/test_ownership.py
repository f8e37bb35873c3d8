"""Customers belong to an organization: another organization's member can neither read, change
nor delete them (and nothing is published when refused), unless a ready invitation lets it read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from kafka_integration import KafkaSettings
from tests.support import Tokens, read_topic

JOHN = {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}


@pytest.fixture
async def client(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    """The customers service with no token of its own: each call says whose it is."""
    app_client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)))
    return app_client


@pytest.fixture
async def two_orgs(client: TestClient[Any, Any], tokens: Tokens) -> dict[str, Any]:
    """Organizations A and B, a member of each, and a customer owned by B."""
    admin = Tokens.header(tokens.admin())
    ids = []
    for name in ("A", "B"):
        resp = await client.post("/organizations", json={"organization": {"name": name}}, headers=admin)
        ids.append((await resp.json())["id"])
    a, b = ids
    member_a = Tokens.header(tokens.make(user_id=10, orgs={a: "member"}))
    member_b = Tokens.header(tokens.make(user_id=11, orgs={b: "member"}))
    created = await client.post("/customers", json={"customer": JOHN}, headers=member_b)
    assert created.status == 201, await created.text()
    customer = await created.json()
    assert customer["organization_id"] == b  # a member of one organization: it owns the customer
    return {"a": a, "b": b, "admin": admin, "member_a": member_a, "member_b": member_b, "customer": customer}


async def _events(kafka: KafkaSettings, customer_id: int) -> list[str]:
    return [
        m.value["action"] if m.value else "tombstone"
        for m in await read_topic(kafka, "customers", timeout=0)
        if m.key == str(customer_id)
    ]


async def test_another_organizations_member_cannot_read_change_or_delete_a_customer(
    client: TestClient[Any, Any], two_orgs: dict[str, Any], kafka: KafkaSettings
) -> None:
    customer, member_a = two_orgs["customer"], two_orgs["member_a"]
    path = f"/customers/{customer['id']}"
    assert (await client.get(path, headers=member_a)).status == 403
    assert (await (await client.get("/customers", headers=member_a)).json())["items"] == []
    hijack = {"customer": {"email": "attacker@a.io"}}
    assert (await client.put(path, json=hijack, headers=member_a)).status == 403
    assert (await client.patch(path, json=hijack, headers=member_a)).status == 403
    steal = {"customer": {"organization_id": two_orgs["a"]}}
    assert (await client.put(path, json=steal, headers=member_a)).status == 403
    assert (await client.delete(path, headers=member_a)).status == 403
    # nor can B's member give the customer to A without being a member of A
    assert (await client.put(path, json=steal, headers=two_orgs["member_b"])).status == 403

    unchanged = await (await client.get(path, headers=two_orgs["member_b"])).json()
    assert (unchanged["email"], unchanged["organization_id"]) == ("jdo@gmail.com", two_orgs["b"])
    assert await _events(kafka, customer["id"]) == ["created"]
    # the owner's member can
    assert (await client.put(path, json=hijack, headers=two_orgs["member_b"])).status == 200
    assert (await client.delete(path, headers=two_orgs["member_b"])).status == 204
    assert await _events(kafka, customer["id"]) == ["created", "updated", "destroyed", "tombstone"]


async def test_a_member_creates_customers_only_for_an_organization_of_theirs(
    client: TestClient[Any, Any], two_orgs: dict[str, Any], tokens: Tokens
) -> None:
    a, b = two_orgs["a"], two_orgs["b"]
    for_b = {"customer": {**JOHN, "organization_id": b}}
    assert (await client.post("/customers", json=for_b, headers=two_orgs["member_a"])).status == 403
    viewer_b = Tokens.header(tokens.make(user_id=12, orgs={b: "viewer"}))
    assert (await client.post("/customers", json=for_b, headers=viewer_b)).status == 403
    both = Tokens.header(tokens.make(user_id=13, orgs={a: "member", b: "member"}))
    unsaid = await client.post("/customers", json={"customer": JOHN}, headers=both)
    assert unsaid.status == 422
    assert (await unsaid.json())["errors"][0]["field"] == "customer.organization_id"
    chosen = await client.post("/customers", json=for_b, headers=both)
    assert chosen.status == 201 and (await chosen.json())["organization_id"] == b
    for bad in (0, -1, 2**63, "1", 999999):
        resp = await client.post(
            "/customers", json={"customer": {**JOHN, "organization_id": bad}}, headers=two_orgs["admin"]
        )
        assert resp.status in (403, 422), (bad, resp.status)
        assert "organization_id" in await resp.text()


async def test_a_customer_of_an_unknown_organization_is_refused_and_nothing_is_written(
    client: TestClient[Any, Any], two_orgs: dict[str, Any]
) -> None:
    """The foreign key proves the owner exists (no SELECT first): the same 422 on the same field."""
    admin = two_orgs["admin"]
    before = await (await client.get("/customers", headers=admin)).json()
    resp = await client.post(
        "/customers", json={"customer": {**JOHN, "organization_id": 999999}}, headers=admin
    )
    assert resp.status == 422
    problem = await resp.json()
    assert [(e["field"], e["problem"]) for e in problem["errors"]] == [
        ("customer.organization_id", "no organization with id 999999")
    ]
    assert await (await client.get("/customers", headers=admin)).json() == before
    # (its event is in the same statement: tests/kafka_integration/test_row_event.py)


async def test_a_ready_invitation_lets_the_inviting_organization_read_the_customer(
    client: TestClient[Any, Any], two_orgs: dict[str, Any]
) -> None:
    a, customer, member_a, member_b = (
        two_orgs["a"],
        two_orgs["customer"],
        two_orgs["member_a"],
        two_orgs["member_b"],
    )
    path = f"/customers/{customer['id']}"
    invitations = f"/organizations/{a}/organization_associations"
    invited = await client.post(
        invitations, json={"invite": {"customer_id": customer["id"]}}, headers=member_a
    )
    assert invited.status == 201
    invitation = await invited.json()
    assert (await client.get(path, headers=member_a)).status == 403  # pending: not yet
    # the invited customer answers, through its owner: A cannot accept on the customer's behalf
    accept = f"{invitations}/{invitation['id']}/accept"
    assert (await client.post(accept, headers=member_a)).status == 403
    assert (
        await client.patch(f"{invitations}/{invitation['id']}", json={"state": "ready"}, headers=member_a)
    ).status == 403
    assert (await client.post(accept, headers=member_b)).status == 200
    assert (await (await client.get(path, headers=member_a)).json())["id"] == customer["id"]
    assert [c["id"] for c in (await (await client.get("/customers", headers=member_a)).json())["items"]] == [
        customer["id"]
    ]
    # reading is all a ready invitation gives
    assert (await client.put(path, json={"customer": {"name": "X"}}, headers=member_a)).status == 403
    assert (await client.delete(path, headers=member_a)).status == 403


async def test_the_customers_owner_can_take_back_a_ready_invitation(
    client: TestClient[Any, Any], two_orgs: dict[str, Any], tokens: Tokens, kafka: KafkaSettings
) -> None:
    """Accepting is the owner's answer; so is withdrawing it: otherwise A would read (and order
    for) B's customer for ever once B had said yes. A third organization can do neither."""
    a, customer, member_a, member_b = (
        two_orgs["a"],
        two_orgs["customer"],
        two_orgs["member_a"],
        two_orgs["member_b"],
    )
    invitations = f"/organizations/{a}/organization_associations"
    invitation = await (
        await client.post(invitations, json={"invite": {"customer_id": customer["id"]}}, headers=member_a)
    ).json()
    one = f"{invitations}/{invitation['id']}"
    assert (await client.post(f"{one}/accept", headers=member_b)).status == 200
    stranger = Tokens.header(tokens.make(user_id=12, orgs={a + 100: "member"}))
    viewer_b = Tokens.header(tokens.make(user_id=13, orgs={two_orgs["b"]: "viewer"}))
    assert (await client.delete(one, headers=stranger)).status == 403
    assert (await client.delete(one, headers=viewer_b)).status == 403
    assert (await (await client.get(one, headers=member_a)).json())["state"] == "ready"

    assert (await client.delete(one, headers=member_b)).status == 204
    assert (await client.get(f"/customers/{customer['id']}", headers=member_a)).status == 403
    actions = [
        m.value and m.value["action"]
        for m in await read_topic(kafka, "organization_associations", min_count=4)
        if m.key == str(invitation["id"])
    ]
    assert actions == ["created", "updated", "destroyed", None]


async def test_a_rejected_invitation_gives_no_access(
    client: TestClient[Any, Any], two_orgs: dict[str, Any]
) -> None:
    a, customer = two_orgs["a"], two_orgs["customer"]
    invitations = f"/organizations/{a}/organization_associations"
    invited = await client.post(
        invitations, json={"invite": {"customer_id": customer["id"]}}, headers=two_orgs["member_a"]
    )
    reject = f"{invitations}/{(await invited.json())['id']}/reject"
    assert (await client.post(reject, headers=two_orgs["member_b"])).status == 200
    assert (await client.get(f"/customers/{customer['id']}", headers=two_orgs["member_a"])).status == 403
    assert (await (await client.get("/customers", headers=two_orgs["member_a"])).json())["items"] == []


async def test_administrators_still_do_everything_and_create_customers_without_an_owner(
    client: TestClient[Any, Any], two_orgs: dict[str, Any], kafka: KafkaSettings
) -> None:
    admin, member_a = two_orgs["admin"], two_orgs["member_a"]
    seed = await client.post(
        "/customers",
        data=b'{ "customer": {"name": "Matt", "last_name": "B", "email": "m@b.io"}}',
        headers=admin,
    )
    assert seed.status == 201
    ownerless = await seed.json()
    assert ownerless["organization_id"] is None
    events = [
        m.value for m in await read_topic(kafka, "customers", min_count=2) if m.key == str(ownerless["id"])
    ]
    assert events[0] is not None and "organization_id" in events[0] and events[0]["organization_id"] is None
    owned = next(  # by key: the topic has 3 partitions, and read_topic orders by partition first
        m.value for m in await read_topic(kafka, "customers") if m.key == str(two_orgs["customer"]["id"])
    )
    assert owned is not None and owned["organization_id"] == two_orgs["b"]
    # an ownerless customer is changed by administrators only
    path = f"/customers/{ownerless['id']}"
    assert (await client.put(path, json={"customer": {"name": "X"}}, headers=member_a)).status == 403
    assert (await client.get(path, headers=member_a)).status == 403
    assert (
        await client.put(path, json={"customer": {"organization_id": two_orgs["a"]}}, headers=admin)
    ).status == 200
    assert (await (await client.get(path, headers=member_a)).json())["organization_id"] == two_orgs["a"]
    listed = (await (await client.get("/customers", headers=admin)).json())["items"]
    assert len(listed) == 2
    b_customer = f"/customers/{two_orgs['customer']['id']}"
    assert (await client.put(b_customer, json={"customer": {"name": "Y"}}, headers=admin)).status == 200
    # an organization that owns customers is not deleted from under them
    deleted = await client.delete(f"/organizations/{two_orgs['b']}", headers=admin)
    assert deleted.status == 409
    assert (await client.delete(b_customer, headers=admin)).status == 204
    assert (await client.delete(f"/organizations/{two_orgs['b']}", headers=admin)).status == 204
