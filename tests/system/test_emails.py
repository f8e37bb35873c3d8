"""The seed's scenario end to end: services, Kafka, the materializer in the worker, SMTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import Event, KafkaSettings, Producer, new_producer
from tests.support import mails, read_topic, unique, wait_for_mails

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}


async def _post(client: TestClient[Any, Any], path: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_the_invoice_email_carries_the_latest_names(
    customers: TestClient[Any, Any],
    orders: TestClient[Any, Any],
    worker: Any,
    system_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    address = f"{unique('jdo')}@gmail.com"
    org = await _post(customers, "/organizations", {"organization": {"name": "SuperCompany"}})
    await _post(customers, "/organizations", {"organization": {"name": "SomeCompany"}})
    john = await _post(
        customers, "/customers", {"customer": {"name": "John", "last_name": "Do", "email": address}}
    )
    renamed = await customers.put(
        f"/organizations/{org['id']}", json={"organization": {"name": "SuperCompany Tech"}}
    )
    assert renamed.status == 200
    first = await _post(
        orders, "/orders", {"po": "po002", "organization_id": org["id"], "customer_id": john["id"], **ORDER}
    )

    welcome, invoice = await _invoice_and_welcome(system_env, address, "po002")
    assert "John" in str(welcome["Subject"])
    assert str(invoice["Subject"]) == f"Invoice {first['invoice_id']} for order po002 from SuperCompany Tech"
    text = invoice.get_body(preferencelist=("plain",)).get_content()
    html = invoice.get_body(preferencelist=("html",)).get_content()
    assert "Hello John Do" in text and "SuperCompany Tech" in html
    assert invoice["Message-ID"].startswith(f"<invoice-{first['invoice_id']}.")

    enriched = await read_topic(kafka, "orders_created", min_count=1, timeout=30)
    assert [(m.value["po"], m.value["organization_name"], m.value["customer_name"]) for m in enriched] == [
        ("po002", "SuperCompany Tech", "John")
    ]

    # the seed's second diagram: the customer renamed, the next order's email has the new name
    changed = await customers.put(f"/customers/{john['id']}", json={"customer": {"name": "Johnny"}})
    assert changed.status == 200
    await _post(
        orders, "/orders", {"po": "po003", "organization_id": org["id"], "customer_id": john["id"], **ORDER}
    )
    found = await wait_for_mails(system_env, address, count=3)
    latest = [m for m in found if "po003" in str(m["Subject"])]
    assert len(latest) == 1
    assert "Hello Johnny Do" in latest[0].get_body(preferencelist=("plain",)).get_content()
    assert len([m for m in mails(system_env, address) if "po002" in str(m["Subject"])]) == 1

    enriched = await read_topic(kafka, "orders_created", min_count=2)
    assert [(m.value["po"], m.value["organization_name"], m.value["customer_name"]) for m in enriched] == [
        ("po002", "SuperCompany Tech", "John"),
        ("po003", "SuperCompany Tech", "Johnny"),
    ]


async def _invoice_and_welcome(env: dict[str, str], address: str, po: str) -> tuple[Any, Any]:
    found = await wait_for_mails(env, address, count=2)
    welcome = [m for m in found if "Welcome" in str(m["Subject"])]
    invoice = [m for m in found if po in str(m["Subject"])]
    assert len(welcome) == 1 and len(invoice) == 1, [str(m["Subject"]) for m in found]
    return welcome[0], invoice[0]


async def test_an_invitation_emails_the_customer(
    customers: TestClient[Any, Any], worker: Any, system_env: dict[str, str]
) -> None:
    address = f"{unique('matt')}@gmail.com"
    org = await _post(customers, "/organizations", {"organization": {"name": "SuperCompany"}})
    matt = await _post(
        customers, "/customers", {"customer": {"name": "Matt", "last_name": "B", "email": address}}
    )
    invitation = await _post(
        customers,
        f"/organizations/{org['id']}/organization_associations",
        {"invite": {"customer_id": matt["id"]}},
    )
    found = await wait_for_mails(system_env, address, count=2)
    invited = [m for m in found if "invites you" in str(m["Subject"])]
    assert len(invited) == 1
    assert str(invited[0]["Subject"]) == "SuperCompany invites you"
    assert str(invitation["id"]) in invited[0].get_body(preferencelist=("plain",)).get_content()


async def test_an_invoice_waits_for_its_customer_and_one_that_never_comes_is_dead_lettered(
    customers: TestClient[Any, Any], system_env: dict[str, str], kafka: KafkaSettings
) -> None:
    from notifications.config import Config
    from notifications.worker import running_worker

    env = {**system_env, "JOIN_WAIT_SECONDS": "3"}
    address = f"{unique('late')}@gmail.com"
    org = await _post(customers, "/organizations", {"organization": {"name": "LateCo"}})
    producer = Producer(kafka)
    await producer.start()
    try:
        async with running_worker(Config.from_env(env)):
            invoice = {
                "id": 900001,
                "order_id": 1,
                "po": "late1",
                "organization_id": org["id"],
                "customer_id": 800001,
            }
            await producer.produce(
                [
                    Event("invoices", "900001", {**invoice, "action": "created"}, "invoice_created"),
                    Event(
                        "invoices",
                        "900002",
                        {**invoice, "id": 900002, "po": "never", "customer_id": 800002, "action": "created"},
                        "invoice_created",
                    ),
                ]
            )
            raw = new_producer(kafka)
            await raw.start()
            try:  # poison: not JSON, and JSON that is not an object
                await raw.send_and_wait(kafka.topic("invoices"), b"{not json", key=b"900004")
                await raw.send_and_wait(kafka.topic("invoices"), b"[1, 2]", key=b"900005")
            finally:
                await raw.stop()
            # the customer arrives a moment later (as if the customers service were slow)
            customer = {
                "id": 800001,
                "name": "Late",
                "last_name": "Comer",
                "email": address,
                "action": "created",
            }
            await producer.produce([Event("customers", "800001", customer, "customer_created")])
            found = await wait_for_mails(env, address, count=2)
            assert len([m for m in found if "late1" in str(m["Subject"])]) == 1
            letters = await read_topic(kafka, "notifications_dead_letters", min_count=3, timeout=30)
        reasons = " ".join(str(m.value) for m in letters)
        assert "900002" in reasons or "never" in reasons
        assert "not json" in reasons.lower() or "json" in reasons.lower()
        assert not [m for m in mails(env) if "never" in str(m["Subject"])]
    finally:
        await producer.stop()
