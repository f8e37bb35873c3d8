"""The notifications API: POST /mails through a real SMTP server, templates and their overrides,
and the record of every notification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from notifications.app import create_app
from notifications.config import Config
from tests.support import Tokens, assert_rejects_bad_tokens, mails, unique, wait_for_mails, write_signing_keys


@pytest.fixture
async def notifications_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
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
    records = (await (await notifications_client.get("/notifications", params={"status": "sent"})).json())[
        "items"
    ]
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
        ({"code": "customer_created", "to": "a@b.io", "organization_id": 2**63}, "organization_id"),
    ],
)
async def test_bad_mails_are_refused_and_nothing_is_sent_or_recorded(
    notifications_client: TestClient[Any, Any], test_env: dict[str, str], body: dict[str, Any], field: str
) -> None:
    before = len(mails(test_env, containing=test_env["MESSAGE_ID_DOMAIN"]))
    resp = await notifications_client.post("/mails", json=body)
    assert resp.status == 422
    assert field in str(await resp.json())
    assert (await (await notifications_client.get("/notifications")).json())["items"] == []
    assert len(mails(test_env, containing=test_env["MESSAGE_ID_DOMAIN"])) == before


async def test_tokens_and_organization_access(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens, tmp_path: Path
) -> None:
    anonymous = await serve(create_app(Config.from_env(test_env)))
    other = write_signing_keys(tmp_path / "other")["JWT_PRIVATE_KEY_FILE"]
    await assert_rejects_bad_tokens(anonymous, "GET", "/notifications", tokens, other)
    await assert_rejects_bad_tokens(anonymous, "POST", "/mails", tokens, other, {"code": "x", "to": "a@b.io"})
    member = Tokens.header(tokens.make(user_id=3, orgs={13: "member"}))
    viewer = Tokens.header(tokens.make(user_id=4, orgs={13: "viewer"}))
    admin = Tokens.header(tokens.admin())
    mail = {"code": "customer_created", "to": "jdo@example.com", "options": {"name": "John"}}
    assert (await anonymous.post("/mails", json=mail, headers=member)).status == 403
    assert (
        await anonymous.post("/mails", json={**mail, "organization_id": 14}, headers=member)
    ).status == 403
    assert (
        await anonymous.post("/mails", json={**mail, "organization_id": 13}, headers=viewer)
    ).status == 403
    assert (
        await anonymous.post("/mails", json={**mail, "organization_id": 13}, headers=member)
    ).status == 201
    assert (await anonymous.post("/mails", json=mail, headers=admin)).status == 201
    seen = (await (await anonymous.get("/notifications", headers=viewer)).json())["items"]
    assert [n["organization_id"] for n in seen] == [13]
    assert len((await (await anonymous.get("/notifications", headers=admin)).json())["items"]) == 2
    by_admin = max(
        n["id"] for n in (await (await anonymous.get("/notifications", headers=admin)).json())["items"]
    )
    assert (await anonymous.get(f"/notifications/{by_admin}", headers=viewer)).status == 403
    template = {"subject": "Hi", "text_body": "Hello", "html_body": "<p>Hello</p>"}
    assert (
        await anonymous.put("/templates/default-13-invoice_created", json=template, headers=viewer)
    ).status == 403
    assert (
        await anonymous.put("/templates/default-13-invoice_created", json=template, headers=member)
    ).status == 200
    assert (await anonymous.put("/templates/invoice_created", json=template, headers=member)).status == 403


async def test_an_organizations_template_override_is_read_and_used_only_with_a_grant_for_it(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> None:
    client = await serve(create_app(Config.from_env(test_env)))
    admin = Tokens.header(tokens.admin())
    member_a = Tokens.header(tokens.make(user_id=3, orgs={3: "member"}))
    viewer_b = Tokens.header(tokens.make(user_id=4, orgs={4: "viewer"}))
    secret = {"subject": "B's secret $po", "text_body": "B's terms", "html_body": "<p>B's terms</p>"}
    assert (
        await client.put("/templates/default-4-invoice_created", json=secret, headers=admin)
    ).status == 200

    assert (await client.get("/templates/default-4-invoice_created", headers=member_a)).status == 403
    assert (await client.get("/templates/default-4-invoice_created", headers=viewer_b)).status == 200
    assert (await client.get("/templates/invoice_created", headers=member_a)).status == 200
    # a mail names a bare code: another organization's override cannot be reached through it
    to = f"{unique('leak')}@example.com"
    for code in ("4-invoice_created", "default-4-invoice_created", "../invoice_created", "Invoice_created"):
        resp = await client.post(
            "/mails", json={"code": code, "to": to, "organization_id": 3, "options": {}}, headers=member_a
        )
        assert resp.status == 422, code
        assert (await resp.json())["errors"][0]["field"] == "code"
    assert (await (await client.get("/notifications", headers=admin)).json())["items"] == []
    assert mails(test_env, to) == []


@pytest.mark.parametrize("code", ["default-²-x", "default-3-Invoice", "a-b-c-d", "x y", "-x", "x-", "é"])
async def test_template_codes_outside_the_alphabet_are_refused(
    notifications_client: TestClient[Any, Any], code: str
) -> None:
    template = {"subject": "Hi", "text_body": "Hello", "html_body": "<p>Hello</p>"}
    for method in ("PUT", "GET"):
        resp = await notifications_client.request(method, f"/templates/{code}", json=template)
        assert resp.status == 422, (method, code, resp.status)
        assert (await resp.json())["errors"][0]["field"] == "code"
