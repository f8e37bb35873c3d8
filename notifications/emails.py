"""The worker's email handlers: what the materializer calls with each joined record (an invoice,
a new customer, an invitation). Each records its notification (unique per source record and per
Message-ID) and hands it to the senders; the record's offset is committed only after the handler
returns, so what is committed is in the table. Also the invoice email's values from a joined row.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from html import escape
from typing import Any

from materializer import Source
from notifications.db import Source as NotificationSource
from notifications.notify import Notifier
from notifications.senders import Senders

log = logging.getLogger(__name__)


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):.2f}"
    except Exception:
        return str(value)


def invoice_values(row: dict[str, Any]) -> dict[str, Any]:
    """The invoice email's placeholders from the joined record."""
    items = row.get("items") or []
    lines = [
        f"{i.get('quantity')} x {i.get('description')} ({i.get('code')}) at {_money(i.get('amount'))}"
        for i in items
        if isinstance(i, dict)
    ]
    items_html = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return {
        "invoice_id": row.get("id"),
        "order_id": row.get("order_id"),
        "po": row.get("po"),
        "organization_id": row.get("organization_id"),
        "organization_name": row.get("organization_name"),
        "customer_name": row.get("customer_name"),
        "customer_last_name": row.get("customer_last_name"),
        "email": row.get("email"),
        "date": row.get("date"),
        "deliver_date": row.get("deliver_date"),
        "state": row.get("state"),
        "total": _money(row.get("total", "0")),
        "items_text": "\n".join(lines),
        "items_html": f"<ul>{items_html}</ul>" if lines else "",
    }


def _without_nul(value: Any) -> Any:
    """Text from the topics as PostgreSQL can store it (a NUL cannot be in text or jsonb). Other
    control characters are kept here: the subject replaces them (templates.py), and a header that
    still holds one makes the message uncomposable, so failed, never sent with a forged header."""
    return value.replace("\x00", "") if isinstance(value, str) else value


class Emails:
    """The handlers the materializer calls with each joined record: record the notification
    (unique per source and Message-ID) and hand it to the senders. The record's offset is
    committed after this returns, so what is committed is in the table."""

    def __init__(self, notifier: Notifier, senders: Senders) -> None:
        self.notifier = notifier
        self.senders = senders

    async def _send(
        self, source: Source, *, template: str, to: str | None, org: Any, values: dict[str, Any], key: str
    ) -> None:
        if not to:
            log.warning(
                "%s at %s:%s:%s has no recipient; not sent",
                template,
                source.topic,
                source.partition,
                source.offset,
            )
            return
        organization_id = (
            int(org) if isinstance(org, int) or (isinstance(org, str) and org.isdecimal()) else None
        )
        row = await self.notifier.record(
            NotificationSource(source.topic, source.partition, source.offset),
            template=template,
            to=_without_nul(to),
            organization_id=organization_id,
            values={k: _without_nul(v) for k, v in values.items()},
            message_key=key,
            check_template=False,
            lease=True,
        )
        if row["status"] not in ("sent", "failed"):
            self.senders.queue.put_nowait(row)

    async def invoice(self, row: dict[str, Any], source: Source) -> None:
        await self._send(
            source,
            template="invoice_created",
            to=row.get("email"),
            org=row.get("organization_id"),
            values=invoice_values(row),
            key=f"invoice-{row.get('id')}",
        )

    async def welcome(self, row: dict[str, Any], source: Source) -> None:
        values = {k: row.get(k) for k in ("id", "name", "last_name", "email")}
        await self._send(
            source,
            template="customer_created",
            to=row.get("email"),
            org=None,
            values=values,
            key=f"customer-{row.get('id')}",
        )

    async def invitation(self, row: dict[str, Any], source: Source) -> None:
        values = {
            "association_id": row.get("id"),
            "organization_id": row.get("organization_id"),
            "organization_name": row.get("organization_name"),
            "customer_name": row.get("customer_name"),
            "customer_last_name": row.get("customer_last_name"),
            "email": row.get("email"),
        }
        await self._send(
            source,
            template="invitation_created",
            to=row.get("email"),
            org=row.get("customer_organization_id"),  # the customer's owner (None: admins only)
            values=values,
            key=f"invitation-{row.get('id')}",
        )
