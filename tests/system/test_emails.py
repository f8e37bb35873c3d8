"""The seed's scenario end to end: services, Kafka, the materializer in the worker, SMTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from kafka_integration import Event, KafkaSettings, Producer, new_producer
from notifications.app import create_app as notifications_app
from notifications.config import Config, WorkerConfig
from tests.support import Tokens, mails, read_topic, unique, wait_for_mails, wait_until

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

    enriched = await read_topic(kafka, "orders_created", min_count=1)
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

    enriched = await read_topic(kafka, "orders_created", min_count=2)  # 3 partitions: no order across keys
    assert sorted(
        (m.value["po"], m.value["organization_name"], m.value["customer_name"]) for m in enriched
    ) == [
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
    from notifications.worker import running_worker

    env = {**system_env, "JOIN_WAIT_SECONDS": "3"}
    address = f"{unique('late')}@gmail.com"
    org = await _post(customers, "/organizations", {"organization": {"name": "LateCo"}})
    producer = Producer(kafka)
    await producer.start()
    try:
        async with running_worker(WorkerConfig.from_env(env)):
            raw = new_producer(kafka)
            await raw.start()
            try:  # poison: not JSON, and JSON that is not an object
                await raw.send_and_wait(kafka.topic("invoices"), b"{not json", key=b"900004")
                await raw.send_and_wait(kafka.topic("invoices"), b"[1, 2]", key=b"900005")
            finally:
                await raw.stop()
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
            # the customer arrives a moment later (as if the customers service were slow): the
            # very next write, so its time is within the 3 s join wait on any machine (with the
            # poison records, and starting their producer, in between, a busy machine could take
            # longer, and the invoice would be dead-lettered instead of mailed)
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
            letters = await read_topic(kafka, "notifications_dead_letters", min_count=3)
        reasons = " ".join(str(m.value) for m in letters)
        assert "900002" in reasons or "never" in reasons
        assert "not json" in reasons.lower() or "json" in reasons.lower()
        assert not [
            m for m in mails(env, containing=env["MESSAGE_ID_DOMAIN"]) if "never" in str(m["Subject"])
        ]
    finally:
        await producer.stop()


async def test_the_api_serves_the_materialized_tables_behind_tokens(
    customers: TestClient[Any, Any],
    orders: TestClient[Any, Any],
    worker: Any,
    system_env: dict[str, str],
    serve: Any,
    tokens: Tokens,
) -> None:
    api = await serve(notifications_app(Config.from_env(system_env)))
    admin = Tokens.header(tokens.admin())
    org = await _post(customers, "/organizations", {"organization": {"name": "TableCo"}})
    other = await _post(customers, "/organizations", {"organization": {"name": "OtherCo"}})
    person = await _post(
        customers, "/customers", {"customer": {"name": "T", "last_name": "C", "email": "t@c.io"}}
    )
    order = {"po": "tbl1", "organization_id": org["id"], "customer_id": person["id"], **ORDER}
    await _post(orders, "/orders", order)
    await _post(orders, "/orders", {**order, "po": "tbl2", "organization_id": other["id"]})

    async def enriched_orders() -> bool:
        resp = await api.get("/tables/orders_created", headers=admin)
        return resp.status == 200 and len((await resp.json())["items"]) == 2

    await wait_until(enriched_orders)
    row = await (await api.get(f"/tables/organizations_table/{org['id']}", headers=admin)).json()
    assert row["name"] == "TableCo"
    customer = await (await api.get(f"/tables/customers_table/{person['id']}", headers=admin)).json()
    assert (customer["email"], customer["action"]) == ("t@c.io", "created")
    assert (await api.get(f"/tables/customer_created/{person['id']}", headers=admin)).status == 200
    names = {t["name"]: t["rows"] for t in (await (await api.get("/tables", headers=admin)).json())["items"]}
    assert names["orders_created"] == 2

    member = Tokens.header(tokens.make(user_id=9, orgs={org["id"]: "viewer"}))
    seen = (await (await api.get("/tables/orders_created", headers=member)).json())["items"]
    assert [(r["po"], r["organization_name"]) for r in seen] == [("tbl1", "TableCo")]
    assert (await api.get(f"/tables/organizations_table/{other['id']}", headers=member)).status == 403
    assert (await api.get("/tables/orders_created")).status == 401
    assert (await api.get("/tables/nope", headers=admin)).status == 404
    assert (await api.get("/tables/organizations_table/999999", headers=admin)).status == 404
    # customers: read with a grant for their owner; one owned by no organization by admins only
    owned = await _post(
        customers,
        "/customers",
        {"customer": {"name": "O", "last_name": "W", "email": "o@w.io", "organization_id": org["id"]}},
    )

    async def owned_row() -> bool:
        return (await api.get(f"/tables/customers_table/{owned['id']}", headers=member)).status == 200

    await wait_until(owned_row)
    for table in ("customers_table", "customer_created"):
        visible = (await (await api.get(f"/tables/{table}", headers=member)).json())["items"]
        assert [(r["key"], r["organization_id"]) for r in visible] == [(str(owned["id"]), org["id"])]
        assert (await api.get(f"/tables/{table}/{person['id']}", headers=member)).status == 403


async def test_the_worker_exports_its_metrics(
    customers: TestClient[Any, Any], worker: Any, system_env: dict[str, str], serve: Any
) -> None:
    from notifications.worker import worker_app

    materializer, notifier = worker
    address = f"{unique('metrics')}@gmail.com"
    await _post(customers, "/customers", {"customer": {"name": "M", "last_name": "E", "email": address}})
    await wait_for_mails(system_env, address, count=1)
    client = await serve(worker_app(materializer, notifier))
    assert (await client.get("/health")).status == 200
    text = await (await client.get("/metrics")).text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["emails_sent_total"] >= 1
    assert values["materializer_records_in_total"] >= 1
    assert "materializer_dead_letters_total" in values and "emails_failed_total" in values
    assert values["consumer_lag_known"] == 1
    lags = {key: value for key, value in values.items() if key.startswith("consumer_lag{")}
    assert lags and all(value >= 0 for value in lags.values())
    assert all('topic="' in key and 'partition="' in key for key in lags)
    health = await (await client.get("/health")).json()
    assert health["status"] == "ok" and health["consumer_lag"] >= 0


async def test_another_organizations_member_cannot_redirect_a_customers_invoices(
    customers: TestClient[Any, Any],
    orders: TestClient[Any, Any],
    worker: Any,
    system_env: dict[str, str],
    tokens: Tokens,
) -> None:
    bob, attacker = f"{unique('bob')}@gmail.com", f"{unique('attacker')}@gmail.com"
    org_a = await _post(customers, "/organizations", {"organization": {"name": "Attacker Inc"}})
    org_b = await _post(customers, "/organizations", {"organization": {"name": "Victim Ltd"}})
    member_a = Tokens.header(tokens.make(user_id=30, orgs={org_a["id"]: "member"}))
    member_b = Tokens.header(tokens.make(user_id=31, orgs={org_b["id"]: "member"}))
    made = await customers.post(
        "/customers", json={"customer": {"name": "Bob", "last_name": "B", "email": bob}}, headers=member_b
    )
    assert made.status == 201
    customer = await made.json()
    path = f"/customers/{customer['id']}"
    assert (await customers.put(path, json={"customer": {"email": attacker}}, headers=member_a)).status == 403
    assert (await customers.delete(path, headers=member_a)).status == 403
    theirs = {"po": "stolen", "organization_id": org_a["id"], "customer_id": customer["id"], **ORDER}
    assert (await orders.post("/orders", json=theirs, headers=member_a)).status == 403
    # right after the attack, B's order still gets its invoice email, to B's customer
    ours = {**theirs, "po": "po-b", "organization_id": org_b["id"]}
    placed = await orders.post("/orders", json=ours, headers=member_b)
    assert placed.status == 201, await placed.text()
    found = await wait_for_mails(system_env, bob, count=2)
    assert [str(m["Subject"]) for m in found if "po-b" in str(m["Subject"])] == [
        f"Invoice {(await placed.json())['invoice_id']} for order po-b from Victim Ltd"
    ]
    assert mails(system_env, attacker) == []
    assert not [m for m in mails(system_env, bob) if "stolen" in str(m["Subject"])]


async def test_an_invitation_of_another_organizations_customer_stays_that_organizations_data(
    customers: TestClient[Any, Any],
    worker: Any,
    system_env: dict[str, str],
    serve: Callable[..., Any],
    tokens: Tokens,
) -> None:
    """A member of A may invite B's customer (by id), but may not learn its email or name through
    the record of the invitation email, nor word that email with A's own template override."""
    a = await _post(customers, "/organizations", {"organization": {"name": "Inviter"}})
    b = await _post(customers, "/organizations", {"organization": {"name": "Owner"}})
    member_a = Tokens.header(tokens.make(user_id=40, orgs={a["id"]: "member"}))
    member_b = Tokens.header(tokens.make(user_id=41, orgs={b["id"]: "member"}))
    address = f"{unique('owned')}@gmail.com"
    body = {"customer": {"name": "Secret", "last_name": "Name", "email": address, "organization_id": b["id"]}}
    owned = await _post(customers, "/customers", body)
    api = await serve(notifications_app(Config.from_env(system_env)))
    phishing = {"subject": "Your account is locked", "text_body": "click", "html_body": "<a>click</a>"}
    assert (
        await api.put(f"/templates/default-{a['id']}-invitation_created", json=phishing, headers=member_a)
    ).status == 200

    invited = await customers.post(
        f"/organizations/{a['id']}/organization_associations",
        json={"invite": {"customer_id": owned["id"]}},
        headers=member_a,
    )
    assert invited.status == 201, await invited.text()
    found = await wait_for_mails(system_env, address, count=2)
    assert sorted(str(m["Subject"]) for m in found) == ["Inviter invites you", "Welcome, Secret"]

    seen_by_a = (await (await api.get("/notifications", headers=member_a)).json())["items"]
    assert [r for r in seen_by_a if address in str(r)] == []
    seen_by_b = (await (await api.get("/notifications", headers=member_b)).json())["items"]
    (record,) = [r for r in seen_by_b if r["recipient"] == address]
    assert record["template"] == "invitation_created"
    assert (await api.get(f"/notifications/{record['id']}", headers=member_a)).status == 403
