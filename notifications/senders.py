"""A few concurrent SMTP senders fed with recorded notifications. The table is the queue: what
a crash leaves pending (its lease expired) is found again by the sweep; an SMTP server that cannot
be reached is retried with backoff, without limit; any other error counts against the
notification, which is `failed` for good after `max_failures`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from notifications import db, mailer
from notifications.notify import Notifier, SmtpUnavailable

log = logging.getLogger(__name__)

SMTP_RETRY_MAX_SECONDS = 30.0
SWEEP_SECONDS = 5.0


class Senders:
    """A few concurrent SMTP senders fed with recorded notifications. The table is the queue:
    what a crash leaves pending is found again at start; an unreachable server is retried."""

    def __init__(self, notifier: Notifier, concurrency: int, max_failures: int = 5) -> None:
        self.notifier = notifier
        self.concurrency = concurrency
        self.max_failures = max_failures
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"smtp-sender-{n}") for n in range(self.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="smtp-sweep"))

    async def _sweep(self) -> None:
        """Now and then (and at start), what a crash of ours or of another worker left unsent,
        once its lease has expired; the lease keeps a row from being sent twice at once."""
        while True:
            try:
                if self.queue.empty():
                    for row in await db.pending(self.notifier.pool, self.notifier.tenant):
                        self.queue.put_nowait(row)
            except Exception:
                log.exception("looking for unsent notifications failed; trying again later")
            await asyncio.sleep(SWEEP_SECONDS)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        connection = mailer.Connection(self.notifier.smtp)
        try:
            await self._deliver_forever(connection)
        finally:
            await connection.close()

    async def _deliver_forever(self, connection: mailer.Connection) -> None:
        delay = 0.5
        while True:
            row = await self.queue.get()
            try:
                await self.notifier.deliver(row, connection)
                delay = 0.5
            except SmtpUnavailable as exc:
                log.warning("SMTP unavailable (%s); notification %s retried in %.1fs", exc, row["id"], delay)
                await db.release(self.notifier.pool, row["id"])
                await asyncio.sleep(delay)
                delay = min(delay * 2, SMTP_RETRY_MAX_SECONDS)
                self.queue.put_nowait({**row, "leased": False})  # lease again before the next try
            except Exception as exc:
                status = await self._count_failure(row, exc)
                if status in ("failed", "gone"):
                    continue
                log.exception("notification %s could not be sent; retried in %.1fs", row["id"], delay)
                await asyncio.sleep(delay)
                self.queue.put_nowait({**row, "leased": False})

    async def _count_failure(self, row: dict[str, Any], exc: Exception) -> str:
        """Count a failure that was not the SMTP server's doing: bounded, then `failed` for good."""
        error = f"{type(exc).__name__}: {exc}"
        try:
            status = await db.record_failure(self.notifier.pool, row["id"], error, self.max_failures)
        except Exception:
            log.exception("could not count the failure of notification %s", row["id"])
            return "unknown"
        if status == "failed":
            self.notifier.failed += 1
            log.error("notification %s failed %d times; given up: %s", row["id"], self.max_failures, error)
        return status
