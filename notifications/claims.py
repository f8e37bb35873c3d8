"""Recording notifications in shared statements: one INSERT in flight at a time, and the claims
asked for meanwhile go together in the next one (the worker's handlers run for many records at
once: `MaterializerSettings.handler_concurrency`), so a batch of records costs one round trip
instead of one each, and no claim waits for a timer (a lone claim is written at once, by the
single-row INSERT of `db.claim`: for one row it costs less than the shared one).

The uniqueness is the table's, as for `db.claim`: per source record and template, and per
Message-ID. A claim the shared statement did not create (its source or its Message-ID was seen
before, or in the same batch) is claimed alone (`db.claim`, which finds the row), so each
created row, leased to its caller, goes to exactly one caller. A shared statement that fails
(a lock wait that timed out, another worker's deadlock) falls back the same way, so it fails only
the claims that fail alone; only a database that cannot be reached fails every claim of the
statement at once (their records are handled again). A shared statement cancelled (at
shutdown) stops there, and the claims that come after it go in a new one."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import asyncpg

from notifications import db
from servicekit.db import unreachable


class _Batch(NamedTuple):
    claims: list[db.Claim]
    task: asyncio.Task[dict[db.ClaimKey, db.Row]]  # the statement writing them: the rows it created


class Claims:
    def __init__(self, pool: asyncpg.Pool, timeout: float = 5.0) -> None:
        self.pool = pool
        self.timeout = timeout  # seconds a shared statement may take, its connection's wait included
        self._next: _Batch | None = None  # the next statement's claims, once asked for
        self._writing: asyncio.Task[dict[db.ClaimKey, db.Row]] | None = None  # the statement in flight

    async def claim(self, claim: db.Claim) -> db.Row:
        """The notification row of this claim, created if new (`db.claim`); raises what its
        statement raised when the database cannot be reached (the caller's record is handled
        again)."""
        batch = self._next
        if batch is None or batch.task.done():  # none asked for, or one cancelled before it was sent
            task = asyncio.create_task(self._write(), name="notifications-claims")
            batch = self._next = _Batch([], task)
            batch.task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        batch.claims.append(claim)
        try:
            created = await asyncio.shield(batch.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not batch.task.cancelled() or (current is not None and current.cancelling()):
                raise  # this caller was cancelled, not only the shared statement
            created = {}
        except Exception as exc:
            if unreachable(exc):
                raise
            created = {}
        row = created.pop(db.claim_key(claim), None)  # popped: a created row has one owner
        return row if row is not None else await self._alone(claim)

    async def _alone(self, claim: db.Claim) -> db.Row:
        return await db.claim(
            self.pool,
            claim.source,
            template=claim.template,
            recipient=claim.recipient,
            organization_id=claim.organization_id,
            tenant=claim.tenant,
            message_id=claim.message_id,
            args=claim.args,
            lease_seconds=claim.lease_seconds,
        )

    async def _write(self) -> dict[db.ClaimKey, db.Row]:
        if self._writing is not None:
            # its outcome is its callers'; this task's own cancellation is not swallowed
            await asyncio.wait([self._writing])
        batch = self._next
        assert batch is not None and batch.task is asyncio.current_task()
        # claims asked for from here on go in a later statement
        self._writing, self._next = batch.task, None
        async with asyncio.timeout(self.timeout):
            if len(batch.claims) == 1:  # one claim (sparse records): the single-row INSERT is cheaper
                (only,) = batch.claims
                return {db.claim_key(only): await self._alone(only)}
            return await db.claim_many(self.pool, batch.claims)
