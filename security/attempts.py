"""One login attempt at a time per (email, client address) in this process.

The password is checked with no database connection held, so the database cannot serialize
the attempts of one pair; this does: parallel guesses from one address are checked one after
the other, and the limit counts each before the next is let in (security.db.login_allowed,
record_login_failure). Parallel logins with the right password are served one after another,
never refused. Each running instance serializes its own attempts: with N instances behind a
balancer, a burst may pass the limit by at most N - 1 attempts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from servicekit.errors import TooManyRequests

MAX_WAITING = 100  # attempts of one pair queued at once; more are refused at once


class AttemptLocks:
    """A lock per pair, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def one_at_a_time(self, email: str, address: str) -> AsyncIterator[None]:
        key = (email, address)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        if users >= MAX_WAITING:
            raise TooManyRequests("too many login attempts at once for this email from this address", 1)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
