"""The console over HTTP (a real security service for signing in, real PostgreSQL and Kafka):
sign-in for administrators only, the cookie's flags, CSRF on every POST, and hostile input on
every field, path and query parameter (a 4xx naming it, nothing changed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from console import tables
from tests.console.conftest import ADMIN, ServeConsole, csrf_of, sign_in
from tests.support import Tokens, base_url, wait_until

OLDER = re.compile(r'id="older" href="\?key=([^&"]*)&amp;before=([^"]*)"')


async def test_pages_need_an_administrator_and_the_cookie_is_httponly_and_samesite(
    console: TestClient[Any, Any], security: TestClient[Any, Any]
) -> None:
    first = await console.get("/", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/login"
    assert (await sign_in(console, ADMIN[0], "wrong")).status == 401
    resp = await sign_in(console, *ADMIN)
    assert resp.status == 303
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = await console.get("/")
    assert page.status == 200 and "Flow: from a write to an email" in await page.text()
    for path in ("/deadletters", "/notifications", "/workers"):
        assert (await console.get(path)).status == 200, path
    # signing out revokes the token at the security service and forgets the cookie; the token,
    # presented again (a stolen cookie), is refused once the revocation reaches the console
    session_token = next(c.value for c in console.session.cookie_jar if c.key == "console_session")
    token = await csrf_of(console, "/")
    out = await console.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await console.get("/", allow_redirects=False)).status == 303
    console.session.cookie_jar.update_cookies({"console_session": session_token})

    async def refused() -> bool:
        return (await console.get("/", allow_redirects=False)).status == 303

    await wait_until(refused)


async def test_a_user_without_administrator_rights_is_refused(
    console: TestClient[Any, Any], security: TestClient[Any, Any]
) -> None:
    login = await security.post("/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    admin = Tokens.header((await login.json())["jwt"])
    made = await security.post(
        "/users", json={"user": {"email": "op@example.com", "password": "a-good-password"}}, headers=admin
    )
    assert made.status == 201, await made.text()
    resp = await sign_in(console, "op@example.com", "a-good-password")
    assert resp.status == 403 and "administrators only" in await resp.text()
    assert not [c for c in resp.headers.getall("Set-Cookie", []) if c.startswith("console_session=")]
    assert (await console.get("/", allow_redirects=False)).status == 303


async def test_a_forged_or_non_admin_token_in_the_cookie_is_not_signed_in(
    console: TestClient[Any, Any], tokens: Tokens
) -> None:
    for token in (tokens.make(user_id=5, admin=False), "x" * 10000, "a.b.c", "\x00"):
        console.session.cookie_jar.update_cookies({"console_session": token})
        assert (await console.get("/deadletters", allow_redirects=False)).status == 303


async def test_every_action_without_the_csrf_token_is_refused(
    console: TestClient[Any, Any], test_env: dict[str, str]
) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303
    token = await csrf_of(console, "/deadletters")
    for path, data in (
        ("/deadletters/replay", {"id": "m-0-0"}),
        ("/notifications/1/retry", {}),
        ("/logout", {}),
        ("/login", {"email": ADMIN[0], "password": ADMIN[1]}),
    ):
        for csrf in (None, "", "0" * 64, token[:-1] + "x", token * 100):
            body = dict(data) if csrf is None else {**data, "csrf": csrf}
            resp = await console.post(path, data=body, allow_redirects=False)
            assert resp.status in (403, 413), (path, csrf, resp.status)
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        schema = test_env["DATABASE_SCHEMA"]
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".console_actions') == 0
    finally:
        await conn.close()
    # still signed in: the refused logout did nothing
    assert (await console.get("/", allow_redirects=False)).status == 200


async def test_hostile_input_gets_a_4xx_naming_the_field(console: TestClient[Any, Any]) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303
    token = await csrf_of(console, "/deadletters")
    for ids, status in (
        (["m-1-2\x00"], 422),
        (["o-../../etc-1"], 422),
        (["x" * 5000], 422),
        ([], 422),
        (["m-0-999999"], 404),
        (["o-orders-42"], 404),
    ):
        resp = await console.post(
            "/deadletters/replay", data=[("csrf", token), *(("id", i) for i in ids)], allow_redirects=False
        )
        assert resp.status == status, (ids, resp.status, await resp.text())
    huge = await console.post("/deadletters/replay", data={"csrf": token, "id": "m" * 200_000})
    assert huge.status == 413
    for query, field in (
        ("status=bogus", "status"),
        ("organization=1%00", "organization"),
        ("organization=-5", "organization"),
        ("organization=99999999999999999999999", "organization"),
        ("template=%1b%5b2J", "template"),
        ("template=" + "t" * 500, "template"),
    ):
        resp = await console.get(f"/notifications?{query}")
        assert resp.status == 422 and field in await resp.text(), query
    for path, status in (
        ("/notifications/abc", 422),
        ("/notifications/0", 422),
        ("/notifications/99999", 404),
    ):
        assert (await console.get(path)).status == status, path
    retried = await console.post("/notifications/99999/retry", data={"csrf": token}, allow_redirects=False)
    assert retried.status == 404
    bad_login = await console.post(
        "/login", data={"csrf": token, "email": "a\x00@b.c", "password": "p"}, allow_redirects=False
    )
    assert bad_login.status == 422 and "email" in await bad_login.text()


async def test_the_flow_page_streams_its_figures(console: TestClient[Any, Any]) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303
    async with console.get("/events") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        line = await resp.content.readline()
        while not line.startswith(b"data:"):
            line = await resp.content.readline()
        assert b'"ready"' in line


async def test_topics_are_listed_and_a_partition_browsed_from_an_offset_or_a_time(
    console: TestClient[Any, Any], kafka: Any
) -> None:
    from kafka_integration import new_producer

    assert (await sign_in(console, *ADMIN)).status == 303
    producer = new_producer(kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            kafka.topic("organizations"),
            b'{"name": "<script>alert(1)</script>\\u001b[2J", "id": 7}',
            key=b"7\x00\x1b",
            partition=0,
            headers=[("event_type", b"organization_created\n<b>")],
        )
    finally:
        await producer.stop()
    listed = await console.get("/topics")
    text = await listed.text()
    assert listed.status == 200 and "organizations" in text and "compact" in text
    page = await console.get("/topics/organizations?partition=0&offset=0")
    body = await page.text()
    assert page.status == 200 and "&lt;script&gt;" in body and "<script>alert" not in body
    assert "\x1b" not in body and "\x00" not in body
    assert "organization_created" in body
    late = await console.get("/topics/organizations?partition=0&at=2999-01-01T00:00:00Z")
    assert late.status == 200 and "No record from there." in await late.text()
    early = await console.get("/topics/organizations?partition=0&at=2000-01-01T00:00:00%2B02:00")
    assert early.status == 200 and "&lt;script&gt;" in await early.text()
    for query, field, status in (
        ("partition=-1", "partition", 422),
        ("partition=abc", "partition", 422),
        ("partition=99999999999999999999", "partition", 422),
        ("offset=1e5", "offset", 422),
        ("offset=%00", "offset", 422),
        ("at=yesterday", "at", 422),
        ("at=" + "9" * 100, "at", 422),
        ("partition=99", "partition", 404),
    ):
        resp = await console.get(f"/topics/organizations?{query}")
        assert resp.status == status and (status == 404 or field in await resp.text()), query
    for name, status in (("nosuch", 404), ("a%00b", 422), ("..%2F..%2Fetc", 422), ("x" * 300, 422)):
        assert (await console.get(f"/topics/{name}")).status == status, name


async def test_tables_show_row_counts_a_row_by_key_and_its_history(
    test_env: dict[str, str],
    serve: Callable[..., Any],
    serve_console: ServeConsole,
    tokens: Tokens,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from customers.app import create_app as customers_app
    from customers.config import Config as CustomersConfig
    from notifications.app import create_app as notifications_app
    from notifications.config import Config as NotificationsConfig

    customers = await serve(customers_app(CustomersConfig.from_env(test_env)), tokens.admin())
    made = await customers.post("/organizations", json={"organization": {"name": "TableCo"}})
    org = await made.json()
    renamed = await customers.put(f"/organizations/{org['id']}", json={"organization": {"name": "TableCo 2"}})
    assert renamed.status == 200
    api = await serve(notifications_app(NotificationsConfig.from_env(test_env)))
    console = await serve_console(NOTIFICATIONS_URL=base_url(api))
    assert (await sign_in(console, *ADMIN)).status == 303

    async def has_row() -> bool:
        resp = await console.get(f"/tables/organizations_table?key={org['id']}")
        return resp.status == 200 and "TableCo 2" in await resp.text()

    await wait_until(has_row, timeout=60, interval=0.5)
    page = await (await console.get(f"/tables/organizations_table?key={org['id']}")).text()
    assert page.count("TableCo") >= 3  # the row, and both versions in its history
    assert 'id="beginning"' in page and 'id="older"' not in page  # all of it on one page
    # a page at a time (one record here): newest first, then "Older" to the first version
    monkeypatch.setattr(tables, "HISTORY_PAGE", 1)
    monkeypatch.setattr(tables, "HISTORY_CHUNK", 1)
    monkeypatch.setattr(tables, "HISTORY_BUDGET", 1)
    newest = await (await console.get(f"/tables/organizations_table?key={org['id']}")).text()
    history = newest.split('id="history"', 1)[1]
    assert "TableCo 2" in history and history.count("TableCo") == 1
    older = OLDER.search(newest)
    assert older is not None
    first = await (await console.get(f"/tables/organizations_table?key={older[1]}&before={older[2]}")).text()
    history = first.split('id="history"', 1)[1]
    assert history.count("TableCo") == 1 and "TableCo 2" not in history and "(older records)" in first
    listed = await console.get("/tables")
    assert listed.status == 200 and "organizations_table" in await listed.text()
    for path, status in (
        ("/tables/nosuch", 404),
        ("/tables/organizations_table?key=999999", 404),
        ("/tables/organizations_table?key=%00", 422),
        ("/tables/organizations_table?key=" + "k" * 500, 422),
        ("/tables/%1b", 422),
    ):
        assert (await console.get(path)).status == status, path
    workers = await console.get("/workers")
    assert workers.status == 200 and "not answering" in await workers.text()
