"""The `sent` marks of concurrent senders share statements (notifications.marks): every mark is
written with its own message's bytes, each caller returns only once its own is committed, and a
statement that fails raises to each of its callers (who retry), leaving later marks unharmed."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from notifications import db
from notifications.db import Source
from notifications.marks import SentMarks


async def _claimed(pool: asyncpg.Pool, n: int) -> list[int]:
    ids = []
    for offset in range(n):
        row = await db.claim(
            pool,
            Source("invoices", 0, offset),
            template="invoice_created",
            recipient="a@example.com",
            organization_id=1,
            tenant="default",
            message_id=f"<m-{offset}@marks.test>",
            args={},
            lease_seconds=60,
        )
        ids.append(int(row["id"]))
    return ids


def _message(ident: int) -> bytes:
    """A message of its own per notification (as each sender's composed bytes)."""
    return f"Message-ID: <m-{ident}@marks.test>\r\n\r\nfor notification {ident}\r\n".encode()


async def test_concurrent_marks_share_statements_and_each_returns_with_its_own_committed(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _claimed(pool, 100)
    statements: list[list[int]] = []
    write = db.mark_sent

    async def counted(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        statements.append([ident for ident, _ in batch])
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", counted)
    marks = SentMarks(pool)

    async def mark_then_read(ident: int) -> Any:
        await marks.mark(ident, _message(ident))
        return await pool.fetchrow(
            "SELECT status, sent_message FROM email_notifications WHERE id = $1", ident
        )

    rows = await asyncio.gather(*(mark_then_read(i) for i in ids))
    assert [r["status"] for r in rows] == ["sent"] * 100
    assert [bytes(r["sent_message"]) for r in rows] == [_message(i) for i in ids]  # each its own
    assert sorted(i for batch in statements for i in batch) == sorted(ids)
    assert len(statements) < 100
    assert any(len(batch) > 1 for batch in statements)


async def test_a_failed_statement_raises_to_its_callers_and_the_next_marks_are_written(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _claimed(pool, 4)
    write = db.mark_sent
    failures = [ConnectionResetError("database away")]

    async def flaky(p: asyncpg.Pool, batch: list[tuple[int, bytes | None]]) -> set[int]:
        if failures:
            raise failures.pop()
        return await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", flaky)
    marks = SentMarks(pool)
    with pytest.raises(ConnectionResetError):
        await marks.mark(ids[0], _message(ids[0]))
    assert await pool.fetchval("SELECT status FROM email_notifications WHERE id = $1", ids[0]) == "sending"
    await asyncio.gather(*(marks.mark(i, _message(i)) for i in ids))
    rows = await pool.fetch(
        "SELECT id, status, sent_message FROM email_notifications WHERE id = ANY($1::bigint[]) ORDER BY id",
        ids,
    )
    assert [r["status"] for r in rows] == ["sent"] * 4
    assert [bytes(r["sent_message"]) for r in rows] == [_message(i) for i in sorted(ids)]


async def test_a_mark_without_message_bytes_stores_none_beside_others_that_have_them(
    pool: asyncpg.Pool,
) -> None:
    ids = await _claimed(pool, 2)
    marks = SentMarks(pool)
    await asyncio.gather(marks.mark(ids[0], None), marks.mark(ids[1], b"\x00\r\n.\r\n\xff" * 1000))
    rows = await pool.fetch(
        "SELECT status, sent_message FROM email_notifications WHERE id = ANY($1::bigint[]) ORDER BY id", ids
    )
    assert [r["status"] for r in rows] == ["sent", "sent"]
    assert rows[0]["sent_message"] is None
    assert bytes(rows[1]["sent_message"]) == b"\x00\r\n.\r\n\xff" * 1000
