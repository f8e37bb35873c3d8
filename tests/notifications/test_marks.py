"""The `sent` marks of concurrent senders share statements (notifications.marks): every mark is
written, each caller returns only once its own is committed, and a statement that fails raises
to each of its callers (who retry), leaving later marks unharmed."""

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


async def test_concurrent_marks_share_statements_and_each_returns_with_its_own_committed(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _claimed(pool, 100)
    statements: list[list[int]] = []
    write = db.mark_sent

    async def counted(p: asyncpg.Pool, batch: list[int]) -> None:
        statements.append(list(batch))
        await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", counted)
    marks = SentMarks(pool)

    async def mark_then_read(ident: int) -> Any:
        await marks.mark(ident)
        return await pool.fetchval("SELECT status FROM email_notifications WHERE id = $1", ident)

    statuses = await asyncio.gather(*(mark_then_read(i) for i in ids))
    assert statuses == ["sent"] * 100
    assert sorted(i for batch in statements for i in batch) == sorted(ids)
    assert len(statements) < 100


async def test_a_failed_statement_raises_to_its_callers_and_the_next_marks_are_written(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _claimed(pool, 4)
    write = db.mark_sent
    failures = [ConnectionResetError("database away")]

    async def flaky(p: asyncpg.Pool, batch: list[int]) -> None:
        if failures:
            raise failures.pop()
        await write(p, batch)

    monkeypatch.setattr(db, "mark_sent", flaky)
    marks = SentMarks(pool)
    with pytest.raises(ConnectionResetError):
        await marks.mark(ids[0])
    await asyncio.gather(*(marks.mark(i) for i in ids))
    rows = await pool.fetch("SELECT status FROM email_notifications WHERE id = ANY($1::bigint[])", ids)
    assert [r["status"] for r in rows] == ["sent"] * 4
