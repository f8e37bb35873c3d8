"""Marking notifications `sent` in shared statements: one UPDATE in flight at a time, and the
marks asked for meanwhile go together in the next one, so concurrent senders cost one round
trip per batch instead of one each, and no mark waits for a timer (a lone mark is written at
once). Each mark carries its notification's message as sent (its bytes, stored with the mark by
the same statement, row by row). Each caller returns once its mark has committed.

No row holds up the others: the shared statement skips a row another transaction holds (SKIP
LOCKED) and gives up after `timeout` seconds (a connection that never answers); a mark it did not
write is written by its own statement, as before the marks were shared, so only that sender
waits. A shared statement that fails (one row's lock timed out, say) falls back the same way, so
it fails only the marks that fail alone; only a database that cannot be reached fails every mark
of the statement at once (its callers wait it out). A shared statement cancelled (at shutdown)
stops there, and the marks that come after it go in a new one."""

from __future__ import annotations

import asyncpg

from notifications import db
from notifications.shared import SharedStatements


class SentMarks:
    def __init__(self, pool: asyncpg.Pool, timeout: float = 5.0) -> None:
        self.pool = pool
        self.shared: SharedStatements[tuple[int, bytes | None], set[int]] = SharedStatements(
            self._write, timeout=timeout, name="notifications-sent-marks"
        )

    async def mark(self, notification_id: int, message: bytes | None) -> None:
        """Record the notification as sent, with the bytes of its message as the SMTP server took
        them; raises what its statement raised (the caller retries)."""
        written = await self.shared.submit((notification_id, message))
        if written is None or notification_id not in written:
            await db.mark_one_sent(self.pool, notification_id, message)

    async def _write(self, marks: list[tuple[int, bytes | None]]) -> set[int]:
        return await db.mark_sent(self.pool, marks)
