"""What was sent is on record: the `sent` mark stores the message's bytes as the SMTP server took
them (the same bytes the sink received), and the notifications API does not answer with them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from materializer import Source
from notifications import db
from notifications.worker import Emails
from tests.support import unique, wait_for_mails, wait_until


def _lines(raw: bytes) -> bytes:
    """The message with its line ends as LF (SMTP sends them as CRLF), without trailing ones."""
    return raw.replace(b"\r\n", b"\n").rstrip(b"\n")


def _received(sink: Path, to: str) -> bytes:
    """The bytes the sink stored for the one message to `to`."""
    (found,) = [raw for p in sorted(sink.glob("*.eml")) if to.encode() in (raw := p.read_bytes())]
    return found


async def test_the_sent_message_is_stored_as_the_smtp_server_took_it(
    pool: asyncpg.Pool, senders: Callable[..., Any], test_env: dict[str, str]
) -> None:
    out = await senders()
    to = f"{unique('kept')}@example.com"
    invoice = {
        "id": 777,
        "order_id": 77,
        "po": "po-<b>kept</b>",
        "organization_id": 1,
        "organization_name": "Kept \u00c9t\u00e9 Inc",
        "customer_name": "Ada",
        "customer_last_name": "L",
        "email": to,
        "total": "12.50",
    }
    await Emails(out.notifier, out).invoice(invoice, Source("invoices", 0, 77, 0, "777"))
    (received,) = await wait_for_mails(test_env, to)

    async def sent() -> bool:
        return bool(
            await pool.fetchval("SELECT status = 'sent' FROM email_notifications WHERE recipient = $1", to)
        )

    await wait_until(sent)
    row = await pool.fetchrow("SELECT id, sent_message FROM email_notifications WHERE recipient = $1", to)
    stored = bytes(row["sent_message"])
    content = _received(Path(test_env["SMTP_SINK_DIR"]), to).split(b"\r\n", 2)[2]  # after X-Envelope-*
    assert _lines(stored) == _lines(content)
    assert b"Subject:" in stored and b"Message-ID: " + str(received["Message-ID"]).encode() in stored
    # the API's answers leave the bytes out (its documented fields only)
    shown = await db.get_notification(pool, row["id"])
    assert shown is not None and "sent_message" not in shown and shown["status"] == "sent"
    listed = await db.list_notifications(pool, 0, 1000, "sent")
    assert listed and all("sent_message" not in n for n in listed)
