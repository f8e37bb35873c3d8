"""The operations console in a real browser: Debian's chromium driven by Selenium through
chromium-driver (`make test-browser`; `apt-get install chromium chromium-driver`). The services,
the worker and the console run in this process on real ports, against real Kafka, PostgreSQL
and SMTP; the browser may reach nothing but 127.0.0.1. Each test saves a screenshot under
.run/screenshots/. Selenium's calls block, so they run in a thread while the services answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from kafka_integration import Event, KafkaSettings, Producer
from notifications.config import WorkerConfig
from notifications.worker import running_worker, worker_app
from tests.console.conftest import ADMIN, ServeConsole
from tests.support import ROOT, Tokens, base_url, mails, unique, wait_for_mails, wait_until

SCREENSHOTS = ROOT / ".run" / "screenshots"
ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}


class Page:
    """The browser, each call in a thread (the services answer on this event loop meanwhile)."""

    def __init__(self, driver: webdriver.Chrome, base: str, name: str) -> None:
        self.driver, self.base, self.name = driver, base, name

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self.call(self.driver.get, f"{self.base}{path}")

    async def text(self, css: str = "body") -> str:
        def read() -> str:
            try:
                return "\n".join(e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css))
            except WebDriverException:
                return ""

        return str(await self.call(read))

    async def fill_and_submit(self, fields: dict[str, str], button: str) -> None:
        def run() -> None:
            for name, value in fields.items():
                box = self.driver.find_element(By.ID, name)
                box.clear()
                box.send_keys(value)
            self.driver.find_element(By.CSS_SELECTOR, button).click()

        await self.call(run)

    async def click(self, css: str) -> None:
        await self.call(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def script(self, js: str) -> Any:
        return await self.call(self.driver.execute_script, js)

    async def sign_in(self, email: str, password: str) -> None:
        await self.open("/login")
        await self.fill_and_submit({"email": email, "password": password}, "#sign-in")

    async def screenshot(self, suffix: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}{suffix}.png"
        assert await self.call(self.driver.save_screenshot, str(path))
        return path

    async def wait_text(
        self, css: str, predicate: Callable[[str], bool], timeout: float = 60, reload: bool = False
    ) -> str:
        seen = {"text": ""}

        async def ok() -> bool:
            if reload:
                await self.call(self.driver.refresh)
            seen["text"] = await self.text(css)
            return predicate(seen["text"])

        try:
            await wait_until(ok, timeout=timeout, interval=0.5)
        except AssertionError:
            await self.screenshot("-failed")
            raise AssertionError(f"{css} never matched; last: {seen['text'][:2000]}") from None
        return seen["text"]

    async def figure(self, name: str) -> int | None:
        text = (await self.text(f'[data-figure="{name}"]')).strip()
        try:
            return int(float(text))
        except ValueError:
            return None


@pytest.fixture
async def system(
    test_env: dict[str, str],
    serve: Callable[..., Any],
    security: TestClient[Any, Any],
    serve_console: ServeConsole,
    customers_client: TestClient[Any, Any],
    orders_client: TestClient[Any, Any],
) -> AsyncIterator[dict[str, Any]]:
    """Security (with its first administrator), customers, orders, the worker (and its /metrics),
    and the console pointed at them."""
    async with running_worker(WorkerConfig.from_env(test_env)) as (materializer, notifier):
        metrics = await serve(worker_app(materializer, notifier))
        console = await serve_console(WORKER_URLS=base_url(metrics))
        yield {
            "console": base_url(console),
            "security": security,
            "customers": customers_client,
            "orders": orders_client,
        }


async def _post(client: TestClient[Any, Any], path: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_an_order_shows_on_the_flow_and_notifications_pages(
    system: dict[str, Any], browser: webdriver.Chrome, test_env: dict[str, str]
) -> None:
    page = Page(browser, system["console"], "flow")
    await page.sign_in(*ADMIN)
    await page.wait_text("h1", lambda t: "Flow" in t)
    await page.wait_text("#live", lambda t: t.startswith("updated"))  # the live updates arrive
    before = await page.figure("worker.emails_sent") or 0
    chart = '[data-chart="worker:emails_sent"]'
    drawn = await page.text(chart)
    address = f"{unique('flow')}@gmail.com"
    org = await _post(system["customers"], "/organizations", {"organization": {"name": "FlowCo"}})
    person = await _post(
        system["customers"], "/customers", {"customer": {"name": "Flo", "last_name": "W", "email": address}}
    )
    order = {"po": "flow1", "organization_id": org["id"], "customer_id": person["id"], **ORDER}
    await _post(system["orders"], "/orders", order)
    # the counters move on the open page, by server-sent events (no reload)
    await page.wait_text('[data-figure="topic.orders.records"]', lambda t: t.strip() not in ("", "-", "0"))
    await page.wait_text(
        '[data-figure="worker.emails_sent"]', lambda t: t.strip() not in ("", "-") and float(t) >= before + 2
    )
    # records in and out per partition, and the charts redrawn on the open page (no reload)
    await page.wait_text("#partitions", lambda t: "orders/0" in t and "invoices/0" in t)
    await page.wait_text(chart, lambda t: t != drawn and "emails_sent: " in t and "not enough" not in t)
    assert await page.script("return document.querySelectorAll('[data-chart]').length") > 20
    await page.screenshot()
    await page.script("document.getElementById('charts').scrollIntoView()")
    await page.screenshot("-charts")
    await wait_for_mails(test_env, address, count=2)
    notes = Page(browser, system["console"], "notifications")
    await notes.open("/notifications?status=sent")
    rows = await notes.wait_text("#notifications", lambda t: address in t and "invoice" in t, reload=True)
    assert "sent" in rows
    await notes.click("tr[data-notification] a")
    await notes.wait_text("#subject", lambda t: "flow1" in t or "Welcome" in t)
    assert "as the SMTP server took it" in await notes.text(
        "#provenance"
    )  # the stored bytes, not a rendering
    await notes.screenshot()
    # the same order on the topics page, and the worker with its partitions and state size
    more = Page(browser, system["console"], "topics")
    await more.open("/topics/orders?partition=0&offset=0")
    await more.open("/topics")
    await more.wait_text("#topics-list", lambda t: "orders" in t and "compact" in t)
    await more.screenshot()
    workers = Page(browser, system["console"], "workers")
    await workers.open("/workers")
    await workers.wait_text("#processes", lambda t: " ok " in f" {t} " and "B" in t)
    await workers.wait_text("#members", lambda t: "invoices/" in t, reload=True)
    await workers.screenshot()


async def test_a_dead_letter_is_seen_replayed_and_its_invoice_emailed(
    system: dict[str, Any], browser: webdriver.Chrome, kafka: KafkaSettings, test_env: dict[str, str]
) -> None:
    page = Page(browser, system["console"], "deadletters")
    await page.sign_in(*ADMIN)
    customers = system["customers"]
    org = await _post(customers, "/organizations", {"organization": {"name": "DeadCo"}})
    first = await _post(
        customers,
        "/customers",
        {"customer": {"name": "A", "last_name": "A", "email": f"{unique('a')}@gmail.com"}},
    )
    unknown = first["id"] + 1  # the next customer's id: nobody else writes customers in this schema
    # The orders API refuses an order for a customer it has not seen, so the order's invoice
    # event is produced as the orders service would write it, for a customer that does not exist yet.
    invoice = {
        "id": 920001,
        "order_id": 920001,
        "po": "dead1",
        "organization_id": org["id"],
        "customer_id": unknown,
    }
    producer = Producer(kafka)
    await producer.start()
    try:
        await producer.produce(
            [Event("invoices", "920001", {**invoice, "action": "created"}, "invoice_created")]
        )
    finally:
        await producer.stop()
    await page.open("/deadletters")
    letters = await page.wait_text("#letters", lambda t: "invoices/" in t and "920001" in t, reload=True)
    assert "customer" in letters.lower() or "row" in letters.lower()  # the reason names what is missing
    await page.screenshot("-listed")
    # the customer is created; once the materializer has it, the letter is replayed
    address = f"{unique('late')}@gmail.com"
    later = await _post(
        customers, "/customers", {"customer": {"name": "Late", "last_name": "L", "email": address}}
    )
    assert later["id"] == unknown
    await wait_for_mails(test_env, address, count=1)  # its welcome: the tables have it
    letter_id = await page.script(
        "return [...document.querySelectorAll('tr[data-letter]')]"
        ".find(r => r.textContent.includes('920001')).dataset.letter"
    )
    await page.click(f'tr[data-letter="{letter_id}"] button.replay-one')
    await page.wait_text("#done", lambda t: "1 replayed" in t)
    await page.wait_text(f'tr[data-letter="{letter_id}"]', lambda t: "to invoices/" in t)
    found = await wait_for_mails(test_env, address, count=2, timeout=60)
    assert len([m for m in found if "dead1" in str(m["Subject"])]) == 1
    await page.screenshot("-replayed")
    assert len([m for m in mails(test_env, address) if "dead1" in str(m["Subject"])]) == 1


async def test_a_user_without_administrator_rights_is_refused(
    system: dict[str, Any], browser: webdriver.Chrome
) -> None:
    security = system["security"]
    login = await security.post("/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    admin = Tokens.header((await login.json())["jwt"])
    made = await security.post(
        "/users", json={"user": {"email": "op@example.com", "password": "a-good-password"}}, headers=admin
    )
    assert made.status == 201
    page = Page(browser, system["console"], "not-admin")
    await page.sign_in("op@example.com", "a-good-password")
    await page.wait_text("#problem", lambda t: "administrators only" in t)
    await page.screenshot()
    await page.open("/deadletters")
    await page.wait_text("h1", lambda t: t == "Sign in")


async def test_an_action_without_the_csrf_token_is_refused(
    system: dict[str, Any], browser: webdriver.Chrome
) -> None:
    page = Page(browser, system["console"], "csrf")
    await page.sign_in(*ADMIN)
    await page.wait_text("h1", lambda t: "Flow" in t)
    await page.open("/deadletters")
    await page.script("document.querySelector('#replay-form input[name=csrf]').remove()")
    await page.click("#replay-selected")
    await page.wait_text("#problem", lambda t: "CSRF" in t)
    await page.screenshot()
