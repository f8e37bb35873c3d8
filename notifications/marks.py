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

import asyncio
from typing import NamedTuple

import asyncpg

from notifications import db
from servicekit.db import unreachable


class _Batch(NamedTuple):
    marks: list[tuple[int, bytes | None]]  # id, message
    task: asyncio.Task[set[int]]  # the statement writing them: the ids it marked


class SentMarks:
    def __init__(self, pool: asyncpg.Pool, timeout: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout  # seconds a shared statement may take, its connection's wait included
        self._next: _Batch | None = None  # the next statement's marks, once asked for
        self._writing: asyncio.Task[set[int]] | None = None  # the statement in flight

    async def mark(self, notification_id: int, message: bytes | None) -> None:
        """Record the notification as sent, with the bytes of its message as the SMTP server took
        them; raises what its statement raised (the caller retries)."""
        batch = self._next
        if batch is None or batch.task.done():  # none asked for, or one cancelled before it was sent
            task = asyncio.create_task(self._write(), name="notifications-sent-marks")
            batch = self._next = _Batch([], task)
            batch.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        batch.marks.append((notification_id, message))
        try:
            written = await asyncio.shield(batch.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not batch.task.cancelled() or (current is not None and current.cancelling()):
                raise  # this caller was cancelled, not only the shared statement
            written = set()
        except Exception as exc:
            if unreachable(exc):
                raise
            written = set()
        if notification_id not in written:
            await db.mark_one_sent(self.pool, notification_id, message)

    async def _write(self) -> set[int]:
        if self._writing is not None:
            # its outcome is its callers'; this task's own cancellation is not swallowed
            await asyncio.wait([self._writing])
        batch = self._next
        assert batch is not None and batch.task is asyncio.current_task()
        # marks asked for from here on go in a later statement
        self._writing, self._next = batch.task, None
        async with asyncio.timeout(self.timeout):
            return await db.mark_sent(self.pool, batch.marks)
