"""The seed's organization invitations: pending -> ready or rejected, and no other move."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.support import read_topic


async def _org_and_customer(c: TestClient[Any, Any]) -> tuple[int, int]:
    org = await (await c.post("/organizations", json={"organization": {"name": "SuperCompany"}})).json()
    customer = await (
        await c.post(
            "/customers", json={"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}
        )
    ).json()
    return org["id"], customer["id"]


async def test_invite_accept_and_the_events(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    org_id, customer_id = await _org_and_customer(c)
    path = f"/organizations/{org_id}/organization_associations"
    created = await c.post(path, json={"invite": {"customer_id": customer_id}})
    assert created.status == 201
    invitation = await created.json()
    assert invitation["state"] == "pending"
    assert (invitation["organization_id"], invitation["customer_id"]) == (org_id, customer_id)
    again = await c.post(path, json={"invite": {"customer_id": customer_id}})
    assert again.status == 409
    assert [i["id"] for i in (await (await c.get(path)).json())["items"]] == [invitation["id"]]

    accepted = await c.post(f"{path}/{invitation['id']}/accept")
    assert accepted.status == 200
    assert (await accepted.json())["state"] == "ready"
    messages = await read_topic(kafka, "organization_associations", min_count=2)
    assert [(m.key, m.value["state"], m.value["action"]) for m in messages] == [
        (str(invitation["id"]), "pending", "created"),
        (str(invitation["id"]), "ready", "updated"),
    ]
    assert messages[0].headers["event_type"] == "organization_association_created"


@pytest.mark.parametrize(
    ("first", "second"),
    [("ready", "rejected"), ("rejected", "ready"), ("ready", "ready"), ("rejected", "rejected")],
)
async def test_only_a_pending_invitation_moves(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings, first: str, second: str
) -> None:
    c = customers_client
    org_id, customer_id = await _org_and_customer(c)
    path = f"/organizations/{org_id}/organization_associations"
    invitation = await (await c.post(path, json={"invite": {"customer_id": customer_id}})).json()
    one = f"{path}/{invitation['id']}"
    assert (await c.patch(one, json={"state": first})).status == 200
    refused = await c.patch(one, json={"state": second})
    assert refused.status == 409
    assert "pending" in (await refused.json())["detail"]
    assert (await (await c.get(one)).json())["state"] == first
    assert len(await read_topic(kafka, "organization_associations", min_count=2)) == 2


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        ({"state": "pending"}, 422, "state"),
        ({"state": "accepted"}, 422, "state"),
        ({"state": 1}, 422, "state"),
        ({}, 422, "state"),
    ],
)
async def test_a_move_to_an_unknown_state_is_refused(
    customers_client: TestClient[Any, Any], body: dict[str, Any], status: int, word: str
) -> None:
    c = customers_client
    org_id, customer_id = await _org_and_customer(c)
    path = f"/organizations/{org_id}/organization_associations"
    invitation = await (await c.post(path, json={"invite": {"customer_id": customer_id}})).json()
    resp = await c.patch(f"{path}/{invitation['id']}", json=body)
    assert resp.status == status
    assert word in str(await resp.json())
    assert (await (await c.get(f"{path}/{invitation['id']}")).json())["state"] == "pending"


async def test_bad_invitations_change_nothing(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    org_id, customer_id = await _org_and_customer(c)
    path = f"/organizations/{org_id}/organization_associations"
    for url, body, status in [
        (path, {"invite": {"customer_id": 999999}}, 422),
        (path, {"invite": {"customer_id": "1"}}, 422),
        (path, {"invite": {"customer_id": 2**63}}, 422),  # past bigint: a 422, not a 500
        (path, {"invite": {}}, 422),
        (path, {"customer_id": "1"}, 422),  # flat, as wrapped: the same rules
        ("/organizations/999999/organization_associations", {"invite": {"customer_id": customer_id}}, 404),
    ]:
        resp = await c.post(url, json=body)
        assert resp.status == status, (url, body)
    assert (await c.delete(f"{path}/999999")).status == 404
    assert await read_topic(kafka, "organization_associations", timeout=0) == []


async def test_deleting_an_invitation_or_its_organization_emits_destroyed(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    org_id, customer_id = await _org_and_customer(c)
    path = f"/organizations/{org_id}/organization_associations"
    first = await (await c.post(path, json={"invite": {"customer_id": customer_id}})).json()
    assert (await c.delete(f"{path}/{first['id']}")).status == 204
    second = await (await c.post(path, json={"invite": {"customer_id": customer_id}})).json()
    assert (await c.delete(f"/organizations/{org_id}")).status == 204
    messages = await read_topic(kafka, "organization_associations", min_count=6)
    for invitation in (first, second):  # order holds per key
        actions = [m.value and m.value["action"] for m in messages if m.key == str(invitation["id"])]
        assert actions == ["created", "destroyed", None]
