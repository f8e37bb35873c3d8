"""The notifications API: POST /mails through a real SMTP server, templates and their overrides,
and the record of every notification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notifications.app import create_app
from notifications.config import Config
from tests.support import mails, unique, wait_for_mails


@pytest.fixture
async def notifications_client(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)))
    return client


async def test_post_mails_sends_a_text_and_html_email_and_records_it(
    notifications_client: TestClient[Any, Any], test_env: dict[str, str]
) -> None:
    to = f"{unique('direct')}@example.com"
    resp = await notifications_client.post(
        "/mails",
        json={
            "code": "customer_created",
            "to": to,
            "options": {"name": "Ada", "last_name": "<L>", "email": to},
        },
    )
    assert resp.status == 201, await resp.text()
    (message,) = await wait_for_mails(test_env, to)
    assert message["Subject"] == "Welcome, Ada"
    assert "Hello Ada <L>," in message.get_body(preferencelist=("plain",)).get_content()
    assert "Hello Ada &lt;L&gt;," in message.get_body(preferencelist=("html",)).get_content()
    assert message["Message-ID"].strip().startswith("<mail-")
    records = await (await notifications_client.get("/notifications", params={"status": "sent"})).json()
    assert [(r["recipient"], r["template"], r["source_topic"]) for r in records] == [
        (to, "customer_created", "mails")
    ]


async def test_an_organization_override_wins_over_the_default_template(
    notifications_client: TestClient[Any, Any], test_env: dict[str, str]
) -> None:
    override = {
        "subject": "Hi $name from org 7",
        "text_body": "custom $name",
        "html_body": "<p>custom $name</p>",
    }
    assert (
        await notifications_client.put("/templates/default-7-customer_created", json=override)
    ).status == 200
    to7, other = f"{unique('org7')}@example.com", f"{unique('org8')}@example.com"
    for to, org in ((to7, 7), (other, 8)):
        resp = await notifications_client.post(
            "/mails",
            json={"code": "customer_created", "to": to, "organization_id": org, "options": {"name": "Bo"}},
        )
        assert resp.status == 201
    assert (await wait_for_mails(test_env, to7))[0]["Subject"] == "Hi Bo from org 7"
    assert (await wait_for_mails(test_env, other))[0]["Subject"] == "Welcome, Bo"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "no_such_template", "to": "a@b.io"}, "code"),
        ({"code": "customer_created", "to": "not an address"}, "to"),
        ({"code": "customer_created", "to": "a@b.io", "options": {"x": {"nested": 1}}}, "options.x"),
        ({"to": "a@b.io"}, "code"),
    ],
)
async def test_bad_mails_are_refused_and_nothing_is_sent_or_recorded(
    notifications_client: TestClient[Any, Any], test_env: dict[str, str], body: dict[str, Any], field: str
) -> None:
    before = len(mails(test_env))
    resp = await notifications_client.post("/mails", json=body)
    assert resp.status == 422
    assert field in str(await resp.json())
    assert await (await notifications_client.get("/notifications")).json() == []
    assert len(mails(test_env)) == before
