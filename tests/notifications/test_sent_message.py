"""What was sent is on record: the `sent` mark stores the message's bytes as the SMTP server took
them (the same bytes the sink received), each notification its own even when concurrent senders'
marks share one statement, and the notifications API does not answer with them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from materializer import Source
from notifications import db
from notifications.emails import invoice_values
from notifications.mailer import SmtpSettings
from notifications.notify import Notifier
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


async def test_concurrent_sends_in_one_batch_each_store_their_own_message(
    pool: asyncpg.Pool, test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sent marks of concurrent senders share one UPDATE (notifications.marks); each row of
    it gets its own message's bytes, never another's. The first mark's statement is held in
    flight until the two others have been sent by the real SMTP server and asked to be marked,
    so those two go in one statement together."""
    notifier = Notifier(pool, SmtpSettings.from_env(test_env))
    statements: list[list[int]] = []
    held = asyncio.Event()
    write = db.mark_sent

    async def spied(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        statements.append([ident for ident, _ in batch])
        if len(statements) == 1:
            await held.wait()
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", spied)
    asked: list[int] = []
    mark = notifier.marks.mark

    async def counted(notification_id: int, message: bytes | None) -> None:
        asked.append(notification_id)
        await mark(notification_id, message)

    monkeypatch.setattr(notifier.marks, "mark", counted)
    rows, recipients = [], []
    for n in range(3):
        to = f"{unique(f'own{n}')}@example.com"
        recipients.append(to)
        rows.append(
            await notifier.record(
                db.Source("invoices", 0, 500 + n),
                template="invoice_created",
                to=to,
                organization_id=1,
                values=invoice_values(
                    {
                        "id": n,
                        "order_id": n,
                        "po": f"po-{n}",
                        "organization_id": 1,
                        "organization_name": f"Org {n}",
                        "customer_name": f"Name {n}",
                        "customer_last_name": "L",
                        "email": to,
                        "total": f"{n}.00",
                    }
                ),
                message_key=f"own-{n}",
            )
        )
    first = asyncio.create_task(notifier.deliver(rows[0]))

    async def first_in_flight() -> bool:
        return len(statements) == 1

    await wait_until(first_in_flight)
    others = asyncio.gather(notifier.deliver(rows[1]), notifier.deliver(rows[2]))

    async def both_asked() -> bool:
        return len(asked) == 3

    await wait_until(both_asked)
    held.set()
    assert await first == "sent" and await others == ["sent", "sent"]
    ids = [int(r["id"]) for r in rows]
    assert len(statements) == 2 and statements[0] == [ids[0]]
    assert sorted(statements[1]) == sorted(ids[1:])  # the two concurrent sends in one statement
    sink = Path(test_env["SMTP_SINK_DIR"])
    for row, to in zip(rows, recipients, strict=True):
        stored = await pool.fetchval("SELECT sent_message FROM email_notifications WHERE id = $1", row["id"])
        assert stored is not None
        content = _received(sink, to).split(b"\r\n", 2)[2]
        assert _lines(bytes(stored)) == _lines(content)  # this notification's own bytes
        assert f"To: {to}".encode() in bytes(stored) and row["message_id"].encode() in bytes(stored)
        assert all(other.encode() not in bytes(stored) for other in recipients if other != to)
