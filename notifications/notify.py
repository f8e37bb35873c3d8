"""Turning records into emails, each once per source record.

How "once" is kept: the notification row (unique per source topic/partition/offset and template)
is committed before the SMTP call, marked `sending` while it runs and `sent` after the server's
250. A record seen again (a redelivery after a crash) whose row is `sent` or `failed` sends
nothing. A row left `created`/`sending` by a crash is sent again with the same Message-ID: the
only case that can reach the server twice is a crash in the instant between the server accepting
the message and the `sent` mark (whatever stops that mark, a database away or a row lock held past its
lock_timeout, is waited out and the mark tried again, never given up on);
the stable Message-ID lets the receiving side drop that copy (mailbox stores such as Gmail do;
the project's sink keeps every copy, so tests count them). That last step is left to the SMTP side.
SMTP refusals (5xx) are recorded as `failed` with the error, and so is a message that cannot be
composed (a bad header value, a broken template): it would fail again, so it is never retried. An
unreachable server raises, so the caller retries later without losing the record; any other
error is the caller's to count (`db.record_failure`: a bounded number of attempts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
import asyncpg

from notifications import db, mailer, templates
from notifications.claims import Claims
from notifications.db import Source
from notifications.mailer import SmtpSettings
from notifications.marks import SentMarks
from servicekit.errors import NotFound

log = logging.getLogger(__name__)


class SmtpUnavailable(Exception):
    """The SMTP server could not be reached; the notification stays pending and is retried."""


@dataclass
class Notifier:
    pool: asyncpg.Pool
    smtp: SmtpSettings
    tenant: str = "default"
    template_cache_seconds: float = 0.0  # the worker caches briefly; the API, which stores them, not
    sent: int = 0
    failed: int = 0
    _templates: dict[tuple[str, int | None], tuple[float, templates.Template]] = field(default_factory=dict)
    _marks: SentMarks | None = None
    _claims: Claims | None = None

    @property
    def marks(self) -> SentMarks:
        """The `sent` marks, shared by this notifier's concurrent senders (one statement per batch)."""
        if self._marks is None:
            self._marks = SentMarks(self.pool)
        return self._marks

    @property
    def claims(self) -> Claims:
        """The notifications' records, shared by the handlers of records in flight (one INSERT per batch)."""
        if self._claims is None:
            self._claims = Claims(self.pool)
        return self._claims

    async def template(self, code: str, organization_id: int | None) -> templates.Template:
        """The most specific template for this organization (cached for template_cache_seconds)."""
        now = time.monotonic()
        hit = self._templates.get((code, organization_id))
        if hit is not None and hit[0] > now:
            return hit[1]
        chosen = await templates.find(self.pool, code, self.tenant, organization_id)
        if self.template_cache_seconds > 0:
            self._templates[(code, organization_id)] = (now + self.template_cache_seconds, chosen)
        return chosen

    async def record(
        self,
        source: Source,
        *,
        template: str,
        to: str,
        organization_id: int | None,
        values: dict[str, Any],
        message_key: str,
        check_template: bool = True,
        lease: bool = False,
    ) -> dict[str, Any]:
        """The notification row of this source (created if new, committed before any sending):
        its status says whether it is still to be delivered. `check_template` raises NotFound
        now for an unknown template (a direct mail); otherwise it shows at sending."""
        if check_template:
            await self.template(template, organization_id)
        return await self.claims.claim(
            db.Claim(
                source,
                template=template,
                recipient=to,
                organization_id=organization_id,
                tenant=self.tenant,
                message_id=f"<{message_key}.{self.tenant}@{self.smtp.message_id_domain}>",
                args=values,
                lease_seconds=self.lease_seconds if lease else 0.0,
            )
        )

    @property
    def lease_seconds(self) -> float:
        """How long a sender may hold a notification: well beyond a send's worst case."""
        return self.smtp.timeout * 6

    async def deliver(self, row: dict[str, Any], connection: mailer.Connection | None = None) -> str:
        """Send a recorded notification unless it is already sent or refused, or another sender
        holds it ("leased"); the final status. Raises SmtpUnavailable when the server cannot be
        reached (the row stays pending and its lease expires)."""
        if row["status"] in ("sent", "failed"):
            return str(row["status"])
        try:
            chosen = await self.template(row["template"], row["organization_id"])
        except NotFound as exc:
            return await self._failed(row, exc.message)
        try:
            values = row["args"] if isinstance(row["args"], dict) else json.loads(row["args"])
            subject, text, html = chosen.render(values)
            message = mailer.compose(
                self.smtp,
                to=row["recipient"],
                subject=subject,
                text=text,
                html=html,
                message_id=row["message_id"],
            )
        except Exception as exc:  # the same row fails the same way every time: never retried
            return await self._failed(row, f"cannot compose the message: {exc}")
        if not row.get("leased") and not await db.lease(self.pool, row["id"], self.lease_seconds):
            return "leased"  # sent, refused, or being sent by another sender right now
        try:
            if connection is not None:
                await connection.send(message)
            else:
                await mailer.send(self.smtp, message)
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            OSError,
        ) as exc:
            raise SmtpUnavailable(str(exc)) from exc
        except aiosmtplib.SMTPException as exc:
            return await self._failed(row, f"{type(exc).__name__}: {exc}")
        await self._mark_sent(row["id"], message.data)
        self.sent += 1
        return "sent"

    async def _mark_sent(self, notification_id: int, message: bytes) -> None:
        """The server has the message: record it (and its bytes). Whatever stops the mark (a
        database that is away, a row lock held past `lock_timeout`, a statement that never answers)
        is waited out and the mark tried again: giving up would leave the row `sending`, its lease
        given back, and the next sender would send it a second time."""
        delay = 0.2
        while True:
            try:
                await self.marks.mark(notification_id, message)
                return
            except Exception as exc:
                log.warning(
                    "notification %s was sent; recording it is tried again in %.1f s (%r)",
                    notification_id,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _failed(self, row: dict[str, Any], error: str) -> str:
        await db.mark_failed(self.pool, row["id"], error)
        self.failed += 1
        log.warning("notification %s to %r failed for good: %s", row["id"], row["recipient"], error)
        return "failed"

    async def notify(
        self,
        source: Source,
        *,
        template: str,
        to: str,
        organization_id: int | None,
        values: dict[str, Any],
        message_key: str,
    ) -> str:
        """Record and send `template` to `to` once for this source; returns the final status."""
        row = await self.record(
            source,
            template=template,
            to=to,
            organization_id=organization_id,
            values=values,
            message_key=message_key,
        )
        return await self.deliver(row)
