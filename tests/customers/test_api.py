"""The seed's curl calls against the customers service, and the events each write puts on Kafka."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.support import read_topic

JSON = {"Content-Type": "application/json"}


async def test_seed_organization_and_customer_calls_publish_full_rows(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    super_co = await c.post(
        "/organizations", data='{ "organization": {"name": "SuperCompany" }}', headers=JSON
    )
    assert super_co.status == 201
    org = await super_co.json()
    assert isinstance(org["id"], int) and org["name"] == "SuperCompany"
    assert (
        await c.post("/organizations", data='{ "organization": {"name": "SomeCompany" }}', headers=JSON)
    ).status == 201
    john = await c.post(
        "/customers",
        data='{ "customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}',
        headers=JSON,
    )
    assert john.status == 201
    customer = await john.json()
    assert customer["email"] == "jdo@gmail.com"
    matt = await c.post(
        "/customers",
        data='{ "customer": {"name": "Matt", "last_name": "Berrueta", "email": "mberrueta@gmail.com"}}',
        headers=JSON,
    )
    assert matt.status == 201
    renamed = await c.put(
        f"/organizations/{org['id']}", data='{ "organization": {"name": "SuperCompany Tech" }}', headers=JSON
    )
    assert renamed.status == 200
    assert (await renamed.json())["name"] == "SuperCompany Tech"
    assert renamed.headers["X-Events-Delivered"] == "true"

    orgs = await read_topic(kafka, "organizations", min_count=3)
    assert [(m.key, m.value["name"], m.value["action"]) for m in orgs if m.key == str(org["id"])] == [
        (str(org["id"]), "SuperCompany", "created"),
        (str(org["id"]), "SuperCompany Tech", "updated"),
    ]
    created = next(m for m in orgs if m.key == str(org["id"]))
    assert set(created.value) == {"id", "name", "created_at", "updated_at", "action"}
    assert created.headers["event_type"] == "organization_created"
    assert created.headers["schema_version"] == "1"
    assert len(created.headers["event_id"]) == 36
    customers = await read_topic(kafka, "customers", min_count=2)
    assert {m.value["email"] for m in customers} == {"jdo@gmail.com", "mberrueta@gmail.com"}
    assert all(m.value["action"] == "created" and m.key == str(m.value["id"]) for m in customers)


async def test_the_event_is_in_kafka_when_the_answer_arrives(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    resp = await customers_client.post("/organizations", json={"organization": {"name": "Fast"}})
    assert resp.status == 201 and resp.headers["X-Events-Delivered"] == "true"
    messages = await read_topic(kafka, "organizations", timeout=0)
    assert [m.value["name"] for m in messages] == ["Fast"]


async def test_read_list_update_and_delete(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    c = customers_client
    ids = []
    for name in ("A", "B", "C"):
        resp = await c.post(
            "/customers", json={"customer": {"name": name, "last_name": "L", "email": f"{name}@x.io"}}
        )
        ids.append((await resp.json())["id"])
    first = await c.get("/customers", params={"limit": "2"})
    page = await first.json()
    assert [r["name"] for r in page["items"]] == ["A", "B"] and page["next"] == str(ids[1])
    assert first.headers["Link"] == f'</customers?limit=2&after={ids[1]}>; rel="next"'
    rest = await (await c.get("/customers", params={"after": page["next"], "limit": "2"})).json()
    assert [r["name"] for r in rest["items"]] == ["C"] and rest["next"] is None
    assert (await (await c.get(f"/customers/{ids[0]}")).json())["email"] == "a@x.io"
    patched = await c.put(f"/customers/{ids[0]}", json={"customer": {"last_name": "Renamed"}})
    assert (await patched.json())["last_name"] == "Renamed"
    assert (await patched.json())["name"] == "A"
    assert (await c.delete(f"/customers/{ids[0]}")).status == 204
    assert (await c.get(f"/customers/{ids[0]}")).status == 404

    messages = [m for m in await read_topic(kafka, "customers", min_count=6) if m.key == str(ids[0])]
    assert [m.value["action"] if m.value else None for m in messages] == [
        "created",
        "updated",
        "destroyed",
        None,
    ]
    assert messages[2].value["last_name"] == "Renamed"  # the destroyed event carries the full row


async def test_health_and_openapi_need_no_token(customers_client: TestClient[Any, Any]) -> None:
    health = await customers_client.get("/health")
    assert health.status == 200
    assert (await health.json())["database"] == "ok"
    spec = await (await customers_client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert {"post", "get"} <= set(spec["paths"]["/organizations"])
    assert "CustomerBody" in spec["components"]["schemas"]


async def test_the_seed_body_wrapped_or_flat_is_one_reader(customers_client: TestClient[Any, Any]) -> None:
    wrapped = await customers_client.post("/organizations", json={"organization": {"name": "Wrapped"}})
    flat = await customers_client.post("/organizations", json={"name": "Flat"})
    assert (wrapped.status, flat.status) == (201, 201)
    assert [(await r.json())["name"] for r in (wrapped, flat)] == ["Wrapped", "Flat"]
    bad = await customers_client.post("/customers", json={"name": "A", "last_name": "B", "email": "nope"})
    assert bad.status == 422 and bad.content_type == "application/problem+json"
    assert [e["field"] for e in (await bad.json())["errors"]] == ["customer.email"]


async def test_metrics_count_requests_and_published_events(customers_client: TestClient[Any, Any]) -> None:
    assert (await customers_client.post("/organizations", json={"organization": {"name": "M"}})).status == 201
    assert (await customers_client.post("/organizations", json={"organization": {}})).status == 422
    text = await (await customers_client.get("/metrics")).text()
    for status in ("201", "422"):
        labels = f'method="POST",route="/organizations",service="customers",status="{status}"'
        assert f"http_requests_handled_total{{{labels}}} 1.0" in text
    assert 'events_published_total{service="customers"} 1.0' in text
    assert 'outbox_backlog{service="customers"} 0.0' in text
