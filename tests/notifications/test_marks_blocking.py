"""Attacks on the shared `sent` marks (notifications.marks) with a row lock held in PostgreSQL:
one notification's row locked by another transaction (an operator's session, a console action, a
migration, another worker) or a statement that never answers (a connection black-holed, with no
command timeout) holds up that one statement. Before the marks were shared, it held up that one
sender; shared, it holds up every later mark of the process, and a statement that fails for that
one row fails every mark in it. Reported defects, kept here as strict xfails until marks.py is
changed (another branch owns it now): each turns into a failure the day the defect is fixed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from notifications.marks import SentMarks
from servicekit.db import DatabaseSettings
from tests.notifications.test_marks import _claimed
from tests.support import wait_until


@asynccontextmanager
async def _locked_row(pool: asyncpg.Pool, ident: int) -> AsyncIterator[asyncpg.Connection]:
    """Another transaction holding notification `ident`'s row, until the block ends."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT 1 FROM email_notifications WHERE id = $1 FOR UPDATE", ident)
        try:
            yield conn
        finally:
            await transaction.rollback()


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))


@pytest.mark.xfail(
    reason="defect in notifications.marks: one UPDATE in flight at a time, so a statement held up "
    "by one row's lock holds up every later mark (and every sender waiting on its mark)",
    raises=TimeoutError,
)
async def test_a_mark_held_up_by_one_locked_row_does_not_hold_up_the_marks_of_other_rows(
    pool: asyncpg.Pool,
) -> None:
    held, free = await _claimed(pool, 2)
    marks = SentMarks(pool)
    waiting = None
    try:
        async with _locked_row(pool, held):
            waiting = asyncio.create_task(marks.mark(held))
            await wait_until(lambda: _waiting_on_a_lock(pool))
            # as each sender's own UPDATE did before: this row is free, its mark is written now
            await asyncio.wait_for(marks.mark(free), 5)
            assert await pool.fetchval("SELECT status FROM email_notifications WHERE id = $1", free) == "sent"
    finally:
        if waiting is not None:
            await asyncio.wait_for(waiting, 30)  # the lock gone, the held mark is written too


@pytest.fixture
async def impatient_pool(test_env: dict[str, str], pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the same schema whose statements give up on a row lock after 0.3 s (a
    lock_timeout, as a database administrator may set one)."""
    settings = DatabaseSettings.from_env(test_env, schema="notifications")
    async with asyncpg.create_pool(
        settings.url.reveal(),
        min_size=1,
        max_size=2,
        server_settings={"search_path": settings.schema, "lock_timeout": "300"},
    ) as opened:
        yield opened


@pytest.mark.xfail(
    reason="defect in notifications.marks: a statement that fails for one row (here its lock "
    "timed out) fails every mark that shares it, those of free rows too",
    raises=asyncpg.LockNotAvailableError,
)
async def test_a_row_whose_update_fails_does_not_fail_the_marks_of_other_rows(
    pool: asyncpg.Pool, impatient_pool: asyncpg.Pool
) -> None:
    held, free = await _claimed(pool, 2)
    marks = SentMarks(impatient_pool)
    async with _locked_row(pool, held):
        first, second = await asyncio.gather(marks.mark(held), marks.mark(free), return_exceptions=True)
    assert isinstance(first, asyncpg.LockNotAvailableError)  # that row's mark fails, as before
    if isinstance(second, BaseException):
        raise second
    assert await pool.fetchval("SELECT status FROM email_notifications WHERE id = $1", free) == "sent"
