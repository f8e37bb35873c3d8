"""Attacks on the shared `sent` marks (notifications.marks) with a row lock held in PostgreSQL:
one notification's row locked by another transaction (an operator's session, a console action, a
migration, another worker), a shared statement that never answers (a connection black-holed) or
that is cancelled. Such a row, or statement, holds up or fails only its own marks, as when each
sender wrote its own; the marks of other rows, and every later mark, are written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from materializer import Source
from notifications import db
from notifications.mailer import SmtpSettings
from notifications.marks import SentMarks
from notifications.notify import Notifier
from servicekit.db import DatabaseSettings, _init_connection
from tests.notifications.test_marks import _claimed, _message
from tests.support import mails, unique, wait_for_mails, wait_until


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


async def _status(pool: asyncpg.Pool, ident: int) -> tuple[str, bytes | None]:
    row = await pool.fetchrow("SELECT status, sent_message FROM email_notifications WHERE id = $1", ident)
    message = row["sent_message"]
    return row["status"], None if message is None else bytes(message)


async def _waiting_on_a_lock(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))


def _hold_the_first_statement(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, list[list[int]]]:
    """db.mark_sent recording each statement's ids, the first one held (still run against the
    real database) until the event returned is set."""
    held = asyncio.Event()
    write = db.mark_sent
    statements: list[list[int]] = []

    async def held_first(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        statements.append([ident for ident, _ in batch])
        if len(statements) == 1:
            await held.wait()
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", held_first)
    return held, statements


async def _count_is(statements: list[list[int]], n: int) -> bool:
    return len(statements) == n


async def test_a_mark_held_up_by_one_locked_row_does_not_hold_up_the_marks_of_other_rows(
    pool: asyncpg.Pool,
) -> None:
    held, free = await _claimed(pool, 2)
    marks = SentMarks(pool)
    waiting = None
    try:
        async with _locked_row(pool, held):
            waiting = asyncio.create_task(marks.mark(held, _message(held)))
            await wait_until(lambda: _waiting_on_a_lock(pool))
            # as each sender's own UPDATE did before: this row is free, its mark is written now
            await asyncio.wait_for(marks.mark(free, _message(free)), 5)
            assert await _status(pool, free) == ("sent", _message(free))
            assert not waiting.done()  # the held row's mark waits for its lock, and only it
            assert await _status(pool, held) == ("sending", None)
    finally:
        if waiting is not None:
            await asyncio.wait_for(waiting, 30)  # the lock gone, the held mark is written too
    assert await _status(pool, held) == ("sent", _message(held))


@pytest.fixture
async def impatient_pool(test_env: dict[str, str], pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the same schema whose statements give up on a row lock after 0.3 s (a
    lock_timeout, as a database administrator may set one), its connections set up as the
    services' are."""
    settings = DatabaseSettings.from_env(test_env, schema="notifications")
    async with asyncpg.create_pool(
        settings.url.reveal(),
        min_size=1,
        max_size=2,
        init=_init_connection,
        server_settings={"search_path": settings.schema, "lock_timeout": "300"},
    ) as opened:
        yield opened


async def test_a_row_whose_update_fails_does_not_fail_the_marks_of_other_rows(
    pool: asyncpg.Pool, impatient_pool: asyncpg.Pool
) -> None:
    held, free = await _claimed(pool, 2)
    marks = SentMarks(impatient_pool)
    async with _locked_row(pool, held):
        first, second = await asyncio.gather(
            marks.mark(held, _message(held)), marks.mark(free, _message(free)), return_exceptions=True
        )
    assert isinstance(first, asyncpg.LockNotAvailableError)  # that row's mark fails, as before
    if isinstance(second, BaseException):
        raise second
    assert await _status(pool, free) == ("sent", _message(free))
    assert await _status(pool, held) == ("sending", None)


async def test_a_shared_statement_that_never_answers_gives_up_and_each_mark_is_written_alone(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first shared statement never answers (a connection black-holed): it gives up after the
    marks' timeout, its marks are written one by one, and the next statements are written too."""
    ids = await _claimed(pool, 4)
    write = db.mark_sent
    statements: list[list[int]] = []

    async def black_holed_once(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        statements.append([ident for ident, _ in batch])
        if len(statements) == 1:
            await asyncio.Event().wait()  # never answers
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", black_holed_once)
    marks = SentMarks(pool, timeout=0.5)
    await asyncio.wait_for(asyncio.gather(*(marks.mark(i, _message(i)) for i in ids)), 30)
    assert [await _status(pool, i) for i in ids] == [("sent", _message(i)) for i in ids]
    await asyncio.wait_for(marks.mark(ids[0], b"again"), 30)  # a later statement, answered
    assert len(statements) >= 2
    assert await _status(pool, ids[0]) == ("sent", b"again")


async def test_a_shared_statement_failing_in_postgresql_fails_only_the_marks_that_fail_alone(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared statement fails in PostgreSQL (a real error, not an unreachable database): each of
    its marks is written by its own statement, and a row that is not there is no error (as before:
    a mark that updates no row is no failure)."""
    ids = await _claimed(pool, 3)
    missing = max(ids) + 1_000_000
    write = db.mark_sent
    failures = [1]

    async def failing_once(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        if failures:
            failures.pop()
            await p.execute("SELECT 1 / 0")  # a real error of the server: DivisionByZeroError
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", failing_once)
    marks = SentMarks(pool)
    await asyncio.gather(*(marks.mark(i, _message(i)) for i in [*ids, missing]))
    assert [await _status(pool, i) for i in ids] == [("sent", _message(i)) for i in ids]
    assert await pool.fetchval("SELECT count(*) FROM email_notifications WHERE id = $1", missing) == 0


async def test_a_cancelled_shared_statement_stops_and_later_marks_are_written(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement waiting behind the one in flight is cancelled (at shutdown, say): it stops
    there (it does not go on to write), its caller's mark is written alone, and the marks asked
    for after it go in a new statement instead of joining the cancelled one."""
    first, second, third = await _claimed(pool, 3)
    held, statements = _hold_the_first_statement(monkeypatch)
    marks = SentMarks(pool, timeout=60)
    in_flight = asyncio.create_task(marks.mark(first, _message(first)))
    await wait_until(lambda: _count_is(statements, 1))
    behind = asyncio.create_task(marks.mark(second, _message(second)))

    async def next_asked_for() -> bool:
        return marks.shared._next is not None and bool(marks.shared._next.items)

    await wait_until(next_asked_for)
    assert marks.shared._next is not None
    cancelled = marks.shared._next.task
    cancelled.cancel()
    await asyncio.wait([cancelled])
    assert cancelled.cancelled()  # its own cancellation is not swallowed
    await asyncio.wait_for(behind, 30)  # its caller was not cancelled: that mark is written alone
    assert await _status(pool, second) == ("sent", _message(second))
    later = asyncio.create_task(marks.mark(third, _message(third)))  # not the cancelled statement's
    held.set()
    await asyncio.wait_for(asyncio.gather(in_flight, later), 30)
    assert [await _status(pool, i) for i in (first, second, third)] == [
        ("sent", _message(i)) for i in (first, second, third)
    ]
    assert statements == [[first], [third]]  # the cancelled statement never went on to write


async def test_a_caller_cancelled_leaves_the_shared_statement_to_write_the_others(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender cancelled while its mark waits does not cancel the statement it shares: the other
    marks of that statement are written."""
    first, second, third = await _claimed(pool, 3)
    held, statements = _hold_the_first_statement(monkeypatch)
    marks = SentMarks(pool, timeout=60)
    in_flight = asyncio.create_task(marks.mark(first, _message(first)))
    await wait_until(lambda: _count_is(statements, 1))
    leaving = asyncio.create_task(marks.mark(second, _message(second)))
    staying = asyncio.create_task(marks.mark(third, _message(third)))

    async def both_asked_for() -> bool:
        return marks.shared._next is not None and len(marks.shared._next.items) == 2

    await wait_until(both_asked_for)
    leaving.cancel()
    await asyncio.wait([leaving])
    assert leaving.cancelled()
    held.set()
    await asyncio.wait_for(asyncio.gather(in_flight, staying), 30)
    assert statements == [[first], [second, third]]
    assert [await _status(pool, i) for i in (first, third)] == [("sent", _message(i)) for i in (first, third)]


async def test_a_shared_statement_cancelled_before_it_starts_is_replaced(pool: asyncpg.Pool) -> None:
    """The statement task is cancelled before its first step (asyncio runs the caller, then the
    test, in the loop's turn that created it): its caller's mark is written alone, and a later mark
    goes in a new statement instead of joining the cancelled one (which raised CancelledError to
    every later caller, whose ids were never written)."""
    first, second = await _claimed(pool, 2)
    marks = SentMarks(pool)
    caller = asyncio.create_task(marks.mark(first, _message(first)))
    await asyncio.sleep(0)  # the caller has asked for a statement; that statement has not started
    assert marks.shared._next is not None and not marks.shared._next.task.done()
    marks.shared._next.task.cancel()
    await asyncio.wait_for(caller, 30)
    await asyncio.wait_for(marks.mark(second, _message(second)), 30)
    assert [await _status(pool, i) for i in (first, second)] == [
        ("sent", _message(i)) for i in (first, second)
    ]


async def test_a_skipped_row_moved_by_its_lock_holder_is_marked_sent_as_before(pool: asyncpg.Pool) -> None:
    """The transaction holding the row moves it elsewhere (`failed`, as an operator might) and
    commits: the mark, written alone once the lock is gone, still marks it sent with its message,
    as each sender's own UPDATE did before the marks were shared (it asks only for the id: the
    SMTP server has the message)."""
    (held,) = await _claimed(pool, 1)
    marks = SentMarks(pool)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE email_notifications SET status = 'failed' WHERE id = $1", held)
            waiting = asyncio.create_task(marks.mark(held, _message(held)))
            await wait_until(lambda: _waiting_on_a_lock(pool))
    await asyncio.wait_for(waiting, 30)
    assert await _status(pool, held) == ("sent", _message(held))


async def test_a_sent_message_whose_mark_fails_is_marked_once_the_row_is_free_and_never_sent_again(
    pool: asyncpg.Pool, impatient_pool: asyncpg.Pool, test_env: dict[str, str]
) -> None:
    """The SMTP server took the message, and the `sent` mark then fails (its row held by another
    transaction past the pool's lock_timeout: a LockNotAvailableError, not an unreachable
    database). The sender tries the mark again until it is written: the row is never given back
    as unsent, so nobody sends the message a second time (the sink keeps every copy)."""
    notifier = Notifier(impatient_pool, SmtpSettings.from_env(test_env))
    to = f"{unique('held-mark')}@example.com"
    row = await notifier.record(
        Source("invoices", 0, 0, 0, to),
        template="customer_created",
        to=to,
        organization_id=None,
        values={"name": "Ada", "last_name": "L", "email": to},
        message_key=to,
        check_template=False,
        lease=True,
    )
    async with _locked_row(pool, row["id"]):
        delivering = asyncio.create_task(notifier.deliver(row))
        assert len(await wait_for_mails(test_env, to)) == 1  # the server has it
        # the mark's own statement gives up on the lock after 0.3 s, more than once
        await asyncio.sleep(1.0)
        assert not delivering.done(), delivering.result() if delivering.done() else None
        assert (await _status(pool, row["id"]))[0] == "sending"
    assert await asyncio.wait_for(delivering, 30) == "sent"
    status, stored = await _status(pool, row["id"])
    assert status == "sent" and stored is not None and to.encode() in stored
    assert await pool.fetchval("SELECT failures FROM email_notifications WHERE id = $1", row["id"]) == 0
    assert len(mails(test_env, to)) == 1  # every copy counted: one


async def test_a_mark_alone_gives_up_after_its_timeout_on_a_row_held_elsewhere(pool: asyncpg.Pool) -> None:
    """`mark_one_sent` waits for a held row at most its timeout (then the sender tries again),
    never for ever; the row is marked once it is free."""
    (ident,) = await _claimed(pool, 1)
    async with _locked_row(pool, ident):
        task = asyncio.create_task(db.mark_one_sent(pool, ident, _message(ident), timeout=0.5))
        done, _ = await asyncio.wait({task}, timeout=20)
        assert task in done, "the mark still waits for the row"
        assert isinstance(task.exception(), TimeoutError)
    await db.mark_one_sent(pool, ident, _message(ident), timeout=5)
    assert await _status(pool, ident) == ("sent", _message(ident))
