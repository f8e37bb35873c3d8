"""What the security service tidies up in the background, a bounded batch every minute:

- token revocations (`jti:` on the `revocations` topic) whose token has expired are tombstoned,
  so the compacted topic, and every service's memory, does not grow with every logout ever made;
- failed-login pairs not seen for `LOGIN_FORGET_SECONDS` are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from security import db
from security.config import LoginPolicy
from servicekit.app import DB_POOL
from servicekit.auth import EXPIRY_MARGIN_SECONDS

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
BATCH = 1000


async def tidy(app: web.Application, policy: LoginPolicy) -> None:
    """One round; each step is bounded to BATCH rows."""
    pool = app[DB_POOL]
    tombstoned = await db.tombstone_expired_revocations(pool, int(time.time()) - EXPIRY_MARGIN_SECONDS, BATCH)
    forgotten = await db.forget_login_attempts(pool, policy, BATCH)
    if tombstoned or forgotten:
        log.info(
            "housekeeping: %d expired revocations tombstoned, %d login pairs forgotten", tombstoned, forgotten
        )


def housekeeping_context(policy: LoginPolicy) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx step: a `tidy` round every INTERVAL_SECONDS for the app's lifetime."""

    async def housekeeping(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(INTERVAL_SECONDS)
                try:
                    await tidy(app, policy)
                except Exception as exc:  # the database may be away for a moment: next round
                    log.warning("housekeeping failed: %r", exc)

        task = asyncio.create_task(loop(), name="security-housekeeping")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return housekeeping
