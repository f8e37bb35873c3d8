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

import asyncpg

from notifications import db
from notifications.shared import SharedStatements


class Claims:
    def __init__(self, pool: asyncpg.Pool, timeout: float = 5.0) -> None:
        self.pool = pool
        self.shared: SharedStatements[db.Claim, dict[db.ClaimKey, db.Row]] = SharedStatements(
            self._write, timeout=timeout, name="notifications-claims"
        )

    async def claim(self, claim: db.Claim) -> db.Row:
        """The notification row of this claim, created if new (`db.claim`); raises what its
        statement raised when the database cannot be reached (the caller's record is handled
        again)."""
        created = await self.shared.submit(claim)
        row = created.pop(db.claim_key(claim), None) if created is not None else None  # popped: one owner
        return row if row is not None else await db.claim_one(self.pool, claim)

    async def _write(self, claims: list[db.Claim]) -> dict[db.ClaimKey, db.Row]:
        if len(claims) == 1:  # one claim (sparse records): the single-row INSERT is cheaper
            (only,) = claims
            return {db.claim_key(only): await db.claim_one(self.pool, only)}
        return await db.claim_many(self.pool, claims)
