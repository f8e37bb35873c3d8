"""The console attacked in a real browser (chromium through Selenium, as test_console.py): an
organization's own template (its members may store one) shown to an administrator must not
call out to anyone (an image is a beacon: who looked, when, from where), and the console's pages
must not be framed by another site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from selenium import webdriver
from selenium.webdriver.common.by import By

from servicekit.db import migrate
from tests.browser.test_console import Page
from tests.console.conftest import ADMIN
from tests.support import base_url, unique, wait_until


@pytest.fixture
async def beacon() -> AsyncIterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 (the only host the browser reaches) counting what is fetched."""
    hits: list[str] = []

    async def any_path(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"GIF89a", content_type="image/gif")

    app = web.Application()
    app.router.add_get("/{tail:.*}", any_path)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield base_url(server), hits
    await server.close()


async def test_a_notification_shown_to_an_administrator_calls_out_to_no_one(
    test_env: dict[str, str],
    console: TestClient[Any, Any],
    browser: webdriver.Chrome,
    beacon: tuple[str, list[str]],
) -> None:
    url, hits = beacon
    schema = test_env["DATABASE_SCHEMA"]
    await _migrate(test_env)
    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            """INSERT INTO templates (code, subject, text_body, html_body)
               VALUES ('default-77-invoice', 'Invoice $po', 'text',
                       '<p>Hello</p><img id="beacon" src="' || $1 || '/seen.gif">'
                       || '<link rel="stylesheet" href="' || $1 || '/seen.css">')""",
            url,
        )
        ident = await conn.fetchval(
            """INSERT INTO email_notifications
               (source_topic, source_partition, source_offset, template, recipient, organization_id,
                message_id, args, status)
               VALUES ('invoices', 0, 1, 'invoice', 'x@example.com', 77, $1, '{"po": "p1"}', 'sent')
               RETURNING id""",
            unique("m"),
        )
    finally:
        await conn.close()
    page = Page(browser, base_url(console), "console-beacon")
    await page.sign_in(*ADMIN)
    await page.wait_text("body", lambda t: "Flow" in t)
    await page.open(f"/notifications/{ident}")
    await page.wait_text("#subject", lambda t: "Invoice p1" in t)

    def frame_loaded() -> str:
        frame = browser.find_element(By.CSS_SELECTOR, "iframe.message")
        browser.switch_to.frame(frame)
        try:
            return str(browser.execute_script("return document.readyState + ' ' + document.body.innerHTML"))
        finally:
            browser.switch_to.default_content()

    async def loaded() -> bool:
        state = await page.call(frame_loaded)
        return state.startswith("complete") and "beacon" in state

    await wait_until(loaded)
    await page.screenshot()
    assert hits == [], hits  # the message's image and stylesheet were not fetched
    await page.call(browser.get, f"{url}/reachable.gif")  # the browser could have reached it
    await wait_until(lambda: _reached(hits))
    # and no other site may frame the console (a click there would be the operator's)
    resp = await console.get("/login")
    policy = resp.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy, policy


async def _reached(hits: list[str]) -> bool:
    return "/reachable.gif" in hits


async def _migrate(env: dict[str, str]) -> None:
    """The notifications schema (templates, email_notifications) in the test's schema."""
    schema = env["DATABASE_SCHEMA"]
    pool = await asyncpg.create_pool(
        env["DATABASE_URL"], min_size=1, max_size=1, server_settings={"search_path": f'"{schema}"'}
    )
    try:
        await migrate(pool, ["notifications"], env["DATABASE_SCHEMA"])
    finally:
        await pool.close()
