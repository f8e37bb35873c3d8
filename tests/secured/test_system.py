"""The whole system on the secured broker: each process with its own principal, the ACLs refusing
what a principal does not own, and a wrong password stopping a process at start."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from customers.app import create_app as customers_app
from customers.config import Config as CustomersConfig
from kafka_integration import AccessRefused, Event, KafkaSettings, Producer, check_credentials
from notifications.config import Config as NotificationsConfig
from notifications.worker import running_worker
from orders.app import create_app as orders_app
from orders.config import Config as OrdersConfig
from security.app import create_app as security_app
from security.config import Config as SecurityConfig
from tests.support import ROOT, Tokens, read_topic, unique, wait_for_mails, wait_until

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}
ADMIN = {"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "root-password-0"}
Env = Callable[..., dict[str, str]]


async def _post(client: TestClient[Any, Any], path: str, body: Any, token: str) -> dict[str, Any]:
    resp = await client.post(path, json=body, headers=Tokens.header(token))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_the_seed_scenario_runs_end_to_end_with_one_principal_per_process(
    as_principal: Env, serve: Callable[..., Any], tmp_path: Path, kafka: KafkaSettings
) -> None:
    security = await serve(security_app(SecurityConfig.from_env(as_principal("security", **ADMIN))))
    customers = await serve(customers_app(CustomersConfig.from_env(as_principal("customers"))))
    orders = await serve(orders_app(OrdersConfig.from_env(as_principal("orders"))))
    worker_env = as_principal(
        "notifications-worker", MATERIALIZER_STATE_DIR=str(tmp_path / "state"), JOIN_WAIT_SECONDS="20"
    )
    login = await security.post(
        "/login", json={"email": ADMIN["ADMIN_EMAIL"], "password": ADMIN["ADMIN_PASSWORD"]}
    )
    assert login.status == 201, await login.text()
    token = (await login.json())["jwt"]

    async with running_worker(NotificationsConfig.from_env(worker_env)):
        address = f"{unique('jdo')}@gmail.com"
        org = await _post(customers, "/organizations", {"organization": {"name": "SuperCompany"}}, token)
        john = await _post(
            customers,
            "/customers",
            {"customer": {"name": "John", "last_name": "Do", "email": address}},
            token,
        )
        renamed = await customers.put(
            f"/organizations/{org['id']}",
            json={"organization": {"name": "SuperCompany Tech"}},
            headers=Tokens.header(token),
        )
        assert renamed.status == 200
        po = unique("po")
        order = await _post(
            orders,
            "/orders",
            {"po": po, "organization_id": org["id"], "customer_id": john["id"], **ORDER},
            token,
        )
        found = await wait_for_mails(worker_env, address, count=2, timeout=60)
        invoices = [m for m in found if po in str(m["Subject"])]
        assert [str(m["Subject"]) for m in invoices] == [
            f"Invoice {order['invoice_id']} for order {po} from SuperCompany Tech"
        ]
    enriched = await read_topic(kafka, "orders_created", min_count=1)
    assert [m.value["organization_name"] for m in enriched if m.value and m.value["po"] == po] == [
        "SuperCompany Tech"
    ]


@pytest.mark.parametrize("command", [["customers"], ["notifications", "worker"]])
def test_a_process_with_a_wrong_password_stops_at_start_saying_why(
    as_principal: Env, tmp_path: Path, command: list[str]
) -> None:
    user = "customers" if command == ["customers"] else "notifications-worker"
    env = as_principal(
        user, "not-the-password", PORT="0", WORKER_PORT="0", MATERIALIZER_STATE_DIR=str(tmp_path)
    )
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert f"refused SASL_USERNAME='{user}' (SCRAM-SHA-512)" in last and "Authentication failed" in last
    assert "not-the-password" not in done.stderr


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(other_ca),
        ],
        check=True,
        capture_output=True,
    )
    return other_ca


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_each_mechanism_is_accepted_and_a_foreign_ca_is_refused(
    as_principal: Env, other_ca: Path, mechanism: str
) -> None:
    assert await check_credentials(KafkaSettings.from_env(as_principal("orders", SASL_MECHANISM=mechanism)))
    settings = KafkaSettings.from_env(
        as_principal("orders", SASL_MECHANISM=mechanism, SSL_CAFILE=str(other_ca))
    )
    with pytest.raises(AccessRefused, match="certificate verify failed"):
        await check_credentials(settings)


@pytest.mark.parametrize("user", ["customers", "orders", "notifications", "notifications-worker"])
async def test_a_tombstone_on_revocations_from_anyone_but_security_is_refused(
    as_principal: Env, serve: Callable[..., Any], user: str
) -> None:
    security = await serve(security_app(SecurityConfig.from_env(as_principal("security", **ADMIN))))
    customers = await serve(customers_app(CustomersConfig.from_env(as_principal("customers"))))
    login = await security.post(
        "/login", json={"email": ADMIN["ADMIN_EMAIL"], "password": ADMIN["ADMIN_PASSWORD"]}
    )
    token = (await login.json())["jwt"]
    jti = _jti(token)
    logout = await security.post("/logout", headers=Tokens.header(token))
    assert logout.status in (200, 204), await logout.text()

    async def refused() -> bool:
        resp = await customers.get("/organizations", headers=Tokens.header(token))
        return resp.status == 401

    await wait_until(refused)

    attacker = AIOKafkaProducer(**KafkaSettings.from_env(as_principal(user)).client_kwargs())
    await attacker.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await attacker.send_and_wait(
                KafkaSettings.from_env(as_principal(user)).topic("revocations"),
                key=f"jti:{jti}".encode(),
                value=None,
            )
    finally:
        await attacker.stop()
    assert await refused()  # the logged-out token stays dead


async def test_writing_a_topic_one_does_not_own_is_refused_clearly(
    as_principal: Env,
    serve: Callable[..., Any],
    tokens: Tokens,
    kafka: KafkaSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the direct produce call: the broker's refusal comes back as the error, at once
    producer = Producer(KafkaSettings.from_env(as_principal("customers")))
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.produce([Event("orders", "1", {"id": 1, "action": "created"}, "order_created")])
    finally:
        await producer.stop()

    # a service run with another service's principal: its events wait in the outbox, the relay
    # says so as an error and counts it, and nothing reaches the topic
    name = unique("Intruder")
    caplog.set_level(logging.ERROR, logger="kafka_integration.relay")
    wrong = await serve(customers_app(CustomersConfig.from_env(as_principal("orders"))), tokens.admin())
    resp = await wrong.post("/organizations", json={"organization": {"name": name}})
    assert resp.status == 201 and resp.headers["X-Events-Delivered"] == "false"

    async def counted() -> bool:
        health = await (await wrong.get("/health")).json()
        return bool(health["outbox_refused"] >= 1 and health["outbox_backlog"] >= 1)

    await wait_until(counted)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Kafka refuses SASL_USERNAME='orders'" in e and "TopicAuthorization" in e for e in errors)
    metrics = await (await wrong.get("/metrics")).text()
    assert 'outbox_refused_total{service="customers"}' in metrics
    published = await read_topic(kafka, "organizations")
    assert not [m for m in published if m.value and m.value.get("name") == name]


def _jti(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


@pytest.mark.parametrize("user", ["customers", "orders", "notifications", "notifications-worker"])
async def test_an_api_key_published_by_anyone_but_security_is_refused(as_principal: Env, user: str) -> None:
    """The notifications API accepts what the `api_keys` topic holds: a key forged there by
    another principal would let its holder in, so only security may write it."""
    settings = KafkaSettings.from_env(as_principal(user))
    forger = AIOKafkaProducer(**settings.client_kwargs())
    await forger.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await forger.send_and_wait(
                settings.topic("api_keys"),
                key=b"forged",
                value=b'{"key": "forged", "secret_sha256": "00", "admin": true, "orgs": {}}',
            )
    finally:
        await forger.stop()
