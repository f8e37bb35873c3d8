"""Each email once, whatever the materializer hands over: the same record handed to the handler
twice (a redelivery after a crash, even while the first is being sent), and the same invoice
event published twice (a relay killed between Kafka's ack and its DELETE: two offsets, one
Message-ID). Every copy the SMTP sink received is counted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from materializer import Source
from notifications.worker import Emails
from tests.support import copies, unique, wait_for_mails, wait_until


def _invoice(to: str) -> dict[str, Any]:
    return {
        "id": 4242,
        "order_id": 42,
        "po": "po-once",
        "organization_id": 1,
        "organization_name": "Once Inc",
        "customer_name": "Ada",
        "customer_last_name": "L",
        "email": to,
        "total": "10.00",
    }


async def _settled(pool: asyncpg.Pool) -> None:
    async def nothing_left() -> bool:
        return not await pool.fetchval("SELECT count(*) FROM email_notifications WHERE status <> 'sent'")

    await wait_until(nothing_left)


async def test_the_same_record_handed_to_the_handler_twice_sends_one_email(
    pool: asyncpg.Pool, senders: Callable[..., Any], test_env: dict[str, str]
) -> None:
    out = await senders()
    emails = Emails(out.notifier, out)
    to = f"{unique('twice')}@example.com"
    source = Source("invoices", 0, 5, 0, "4242")
    # twice at once (a redelivery racing the first), then once more after it was sent
    await asyncio.gather(emails.invoice(_invoice(to), source), emails.invoice(_invoice(to), source))
    (message,) = await wait_for_mails(test_env, to)
    await _settled(pool)
    await emails.invoice(_invoice(to), source)
    await _settled(pool)
    assert out.queue.empty()
    assert copies(test_env, test_env["MESSAGE_ID_DOMAIN"]) == {str(message["Message-ID"]): 1}
    assert await pool.fetchval("SELECT count(*) FROM email_notifications") == 1


async def test_the_same_invoice_event_published_twice_sends_one_email(
    pool: asyncpg.Pool, senders: Callable[..., Any], test_env: dict[str, str]
) -> None:
    out = await senders()
    emails = Emails(out.notifier, out)
    to = f"{unique('published-twice')}@example.com"
    await emails.invoice(_invoice(to), Source("invoices", 0, 5, 0, "4242"))
    await emails.invoice(
        _invoice(to), Source("invoices", 0, 9, 0, "4242")
    )  # the same event at a later offset
    (message,) = await wait_for_mails(test_env, to)
    await _settled(pool)
    await emails.invoice(_invoice(to), Source("invoices", 2, 1, 0, "4242"))
    await _settled(pool)
    assert copies(test_env, test_env["MESSAGE_ID_DOMAIN"]) == {str(message["Message-ID"]): 1}
    assert str(message["Message-ID"]).startswith("<invoice-4242.")
