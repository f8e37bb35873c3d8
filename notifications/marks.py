"""Marking notifications `sent` in shared statements: one UPDATE in flight at a time, and the
marks asked for meanwhile go together in the next one, so concurrent senders cost one round
trip per batch instead of one each, and no mark waits for a timer (a lone mark is written at
once). Each mark carries its notification's message as sent (its bytes, stored with the mark by
the same statement, row by row). Each caller returns once the statement holding its mark has
committed."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from notifications import db


class SentMarks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._marks: list[tuple[int, bytes | None]] = []  # the next statement's: id, message
        self._next: asyncio.Task[None] | None = None  # that statement, once asked for
        self._writing: asyncio.Task[None] | None = None  # the statement in flight

    async def mark(self, notification_id: int, message: bytes | None) -> None:
        """Record the notification as sent, with the bytes of its message as the SMTP server took
        them; raises what the statement raised (the caller retries)."""
        self._marks.append((notification_id, message))
        if self._next is None:
            self._next = asyncio.create_task(self._write_next(), name="notifications-sent-marks")
            self._next.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        await asyncio.shield(self._next)

    async def _write_next(self) -> None:
        if self._writing is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._writing)
        # marks asked for from here on go in a later statement
        marks, self._marks = self._marks, []
        self._writing, self._next = self._next, None
        await db.mark_sent(self.pool, marks)
