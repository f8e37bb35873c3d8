"""An ordinary member attacks the orders outbox with as many and as large items as the API lets
them send; the attack is refused at the cap, and another organization's order placed right
after still gets its invoice email within seconds (the outbox is not blocked)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from orders.models import MAX_ITEMS
from tests.support import Tokens, mails, unique, wait_for_mails, wait_until

DATES = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00"}
LONG_ITEM = {"quantity": 1_000_000, "description": "d" * 255, "code": "c" * 255, "amount": "99.99"}


async def _created(resp: Any) -> dict[str, Any]:
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_an_item_flood_is_refused_and_other_organizations_still_get_their_invoices(
    customers: TestClient[Any, Any],
    orders: TestClient[Any, Any],
    worker: Any,
    system_env: dict[str, str],
    tokens: Tokens,
) -> None:
    org_a = await _created(
        await customers.post("/organizations", json={"organization": {"name": "Attacker"}})
    )
    org_b = await _created(await customers.post("/organizations", json={"organization": {"name": "Victim"}}))
    people = {}
    for name in ("a", "b"):
        address = f"{unique(name)}@example.com"
        body = {"customer": {"name": name, "last_name": "X", "email": address}}
        people[name] = (await _created(await customers.post("/customers", json=body)))["id"], address
    member = Tokens.header(tokens.make(user_id=77, orgs={org_a["id"]: "member"}))

    # the attack: the largest order the body limit lets through, then items one by one
    placed = await _created(
        await orders.post(
            "/orders",
            json={"po": "flood", "organization_id": org_a["id"], "customer_id": people["a"][0], **DATES}
            | {"items": [LONG_ITEM] * 100},
        )
    )
    for parent, ident in (("orders", placed["id"]), ("invoices", placed["invoice_id"])):
        statuses = []
        while len(statuses) <= MAX_ITEMS:
            resp = await orders.post(f"/{parent}/{ident}/items", json=LONG_ITEM, headers=member)
            statuses.append(resp.status)
            if resp.status != 201:
                break
        assert statuses[-1] == 422 and statuses.count(201) == MAX_ITEMS - 100, (parent, statuses[-3:])
        assert "at most" in (await resp.json())["detail"]
    # a total past numeric(13,2): refused
    huge = {**LONG_ITEM, "amount": "999999999.99"}
    too_much = await orders.put(
        f"/orders/{placed['id']}/items/{placed['items'][0]['id']}", json=huge, headers=member
    )
    assert too_much.status == 422 and "total" in (await too_much.json())["detail"]

    async def outbox_empty() -> bool:
        health = await (await orders.get("/health")).json()
        return bool(health["outbox_backlog"] == 0)

    await wait_until(outbox_empty)

    # right after: the other organization's order is published and its invoice mailed
    victim = await orders.post(
        "/orders",
        json={"po": "victim-po", "organization_id": org_b["id"], "customer_id": people["b"][0], **DATES},
    )
    assert (await _created(victim))["invoice_id"]
    assert victim.headers["X-Events-Delivered"] == "true"
    found = await wait_for_mails(system_env, people["b"][1], count=2)
    assert len([m for m in found if "victim-po" in str(m["Subject"])]) == 1, [
        str(m["Subject"]) for m in found
    ]
    metrics = await (await orders.get("/metrics")).text()
    assert 'events_dead_lettered_total{service="orders"} 0.0' in metrics
    # every copy received: one invoice email for the victim, none twice
    assert len([m for m in mails(system_env, people["b"][1]) if "victim-po" in str(m["Subject"])]) == 1
