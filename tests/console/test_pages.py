"""The console's pages that read what the system stored: a notification's message exactly as it
was sent (and said so when it was not stored), and a table row's whole history on its topic, a
bounded page at a time. Real PostgreSQL, Kafka and a security service for signing in."""

from __future__ import annotations

import html
import itertools
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from console import records, tables
from console.config import OperationsSettings
from console.errors import InvalidInput, Unavailable
from kafka_integration import KafkaSettings
from notifications.mailer import SmtpSettings, compose
from servicekit.db import migrate
from tests.console.conftest import ADMIN, produce_organizations, sign_in
from tests.support import unique

OFFSETS = itertools.count(1)  # the rows' source offsets (unique per source)


async def _notification(pool: asyncpg.Pool, schema: str, status: str, message: bytes | None) -> int:
    return int(
        await pool.fetchval(
            f"""INSERT INTO "{schema}".email_notifications
                (source_topic, source_partition, source_offset, template, recipient, message_id,
                 status, sent_message, args)
                VALUES ('invoices', 0, $4, 'no_such_template', 'x@y.io', $1, $2, $3, '{{"po": "p1"}}')
                RETURNING id""",
            unique("<m"),
            status,
            message,
            next(OFFSETS),
        )
    )


async def test_a_notification_shows_the_message_as_it_was_sent(
    console: TestClient[Any, Any], pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    schema = ops.schemas["notifications"]
    await migrate(pool, ["notifications"], schema)
    sent = compose(
        SmtpSettings(),
        to="x@y.io",
        subject="Invoice 42 for order p1 \u00e9t\u00e9",
        text="Total: 12.50\nThanks",
        html='<p>Total <b>12.50</b></p><script>alert("sent")</script>',
        message_id="<invoice-42.default@test>",
    )
    exact = await _notification(pool, schema, "sent", sent.data)
    older = await _notification(pool, schema, "sent", None)
    pending = await _notification(pool, schema, "created", None)
    garbage = await _notification(
        pool, schema, "sent", b"\x00\xff\x1b[2J<script>x</script>\r\nSubject: \x1b\r\n\r\n\xfe"
    )
    assert (await sign_in(console, *ADMIN)).status == 303
    page = await console.get(f"/notifications/{exact}")
    body = await page.text()
    # its template does not exist (any more): what shows is the stored message, not a rendering
    assert page.status == 200 and "as the SMTP server took it" in body, body
    assert "Invoice 42 for order p1 \u00e9t\u00e9" in body and "cannot render" not in body
    assert "&lt;invoice-42.default@test&gt;" in body  # its headers
    assert "Total: 12.50" in body  # the text part
    # the HTML part, escaped once into the srcdoc of an iframe whose sandbox runs no script
    srcdoc = html.unescape(body.split('srcdoc="', 1)[1].split('"', 1)[0])
    assert '<script>alert("sent")' not in body and '<script>alert("sent")' in srcdoc
    assert '<iframe title="the message as the recipient sees it" sandbox=""' in body
    before = await (await console.get(f"/notifications/{older}")).text()
    assert "Sent before the notifications service kept the messages it sends" in before
    assert "Not sent yet" in await (await console.get(f"/notifications/{pending}")).text()
    broken = await console.get(f"/notifications/{garbage}")
    text = await broken.text()
    assert broken.status == 200 and "<script>x" not in text and "\x00" not in text


async def _produce(kafka: KafkaSettings, records: list[tuple[str, int, int]]) -> None:
    """(key, partition, n) records on `organizations`, value {"id": key, "name": "v<n>"}."""
    await produce_organizations(kafka, [(key, p, {"id": key, "name": f"v{n}"}) for key, p, n in records])


async def test_a_rows_whole_history_is_paged_newest_first_each_page_bounded(
    kafka: KafkaSettings, monkeypatch: Any
) -> None:
    # its first records, then more than the 2,000 records the console once looked back at (on
    # every partition), then its latest; a key's records are on one partition, as a producer puts them
    mine = [("7", 1, 0), ("7", 1, 1), ("7", 1, 2)]
    others = [(f"o{n}", n % 3, 100 + n) for n in range(2500)]
    latest = [("7", 1, 3), ("7", 1, 4)]
    await _produce(kafka, mine)
    await _produce(kafka, others)
    await _produce(kafka, latest)
    found, cursor = await tables.history(kafka, "organizations_table", "7")
    assert [r["value"]["name"] for r in found] == ["v4", "v3", "v2", "v1", "v0"] and cursor == {}
    # small pages and budgets: each page reads a bounded stretch, the "older" cursor goes on
    monkeypatch.setattr(tables, "HISTORY_PAGE", 2)
    monkeypatch.setattr(tables, "HISTORY_CHUNK", 100)
    monkeypatch.setattr(tables, "HISTORY_BUDGET", 400)
    async with records.reader(kafka) as consumer:
        tps = await records.partitions(kafka, "organizations")
        ends = {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    seen: list[str] = []
    before: dict[int, int] | None = None
    pages = 0
    while True:
        found, cursor = await tables.history(kafka, "organizations_table", "7", before)
        pages += 1
        seen += [r["value"]["name"] for r in found]
        read = sum((before or ends).values()) - sum(cursor.values())
        assert read <= 400 + 3 * 100, read  # the budget, overrun by at most one chunk per partition
        if not cursor:
            break
        before = tables.check_cursor(tables.cursor_text(cursor))
        assert pages < 50
    assert seen == ["v4", "v3", "v2", "v1", "v0"] and pages > 3
    for bad in (
        "0",
        "0:",
        ":5",
        "a:1",
        "0:1,0:2",
        "0:-1",
        "0:1;1:2",
        "0:" + "9" * 20,
        "1" * 5000,
        "\uff10:1",
        "0:1\x00",
    ):
        try:
            tables.check_cursor(bad)
        except InvalidInput as exc:
            assert exc.field == "before"
        else:
            raise AssertionError(bad)
    try:
        await tables.history(kafka, "organizations_table", "7", {0: 5, 99: 1})
    except InvalidInput as exc:
        assert exc.field == "before" and "99" in str(exc)
    else:
        raise AssertionError("a partition the topic does not have")


async def test_a_hostile_history_cursor_gets_a_422_naming_it(console: TestClient[Any, Any]) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303
    for before in ("x", "0:1,0:1", "%00", "9" * 5000, "0:1%0A1:2"):
        resp = await console.get(f"/tables/organizations_table?key=7&before={before}")
        assert resp.status == 422 and "before" in await resp.text(), before


async def test_a_read_of_kafka_cut_short_is_an_error_never_a_shorter_list(
    kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh reader that cannot reach the end it found at start in time (a busy broker, a slow
    first fetch) answers Unavailable: `deadletters list` once printed nothing for a topic that held
    a dead letter, as if there were none."""
    await produce_organizations(kafka, [("k1", 0, {"id": 1, "name": "A"}), ("k2", 1, {"id": 2, "name": "B"})])
    assert len(await records.read_topic(kafka, "organizations")) == 2
    monkeypatch.setattr(records, "READ_TIMEOUT", 0.0)
    with pytest.raises(Unavailable, match=r"did not deliver .*organizations/0.*try again"):
        await records.read_topic(kafka, "organizations")
