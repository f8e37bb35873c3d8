"""The notifications of records handled together are recorded by shared INSERTs
(notifications.claims): each gets its own row, with what it was given, once per source record and
per Message-ID, and each row created leased goes to exactly one caller, so one sender sends it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from notifications import db
from notifications.claims import Claims
from notifications.db import Claim, Source


def _claim(offset: int, *, message_id: str | None = None, args: dict[str, Any] | None = None) -> Claim:
    return Claim(
        Source("invoices", offset % 3, offset),
        template="invoice_created",
        recipient=f"c{offset}@example.com",
        organization_id=offset if offset % 2 else None,
        tenant="default",
        message_id=message_id or f"<invoice-{offset}.default@claims.test>",
        args=args if args is not None else {"invoice_id": offset, "po": f"PO-{offset}"},
        lease_seconds=60.0,
    )


async def test_concurrent_claims_share_statements_and_each_gets_its_own_leased_row(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[int] = []
    write = db.claim_many

    async def counted(p: asyncpg.Pool, batch: list[Claim]) -> dict[db.ClaimKey, db.Row]:
        statements.append(len(batch))
        return await write(p, batch)

    monkeypatch.setattr(db, "claim_many", counted)
    claims = Claims(pool)
    hostile = {"po": "PO \u2028 é 日本 🧾 \r\n'\"; DROP TABLE x; --", "items_text": "x" * 100_000, "n": None}
    asked = [_claim(n, args=hostile if n == 7 else None) for n in range(200)]
    rows = await asyncio.gather(*(claims.claim(c) for c in asked))
    assert len(statements) < 20 and sum(statements) == 200  # shared, not one per claim
    assert all(row["leased"] and row["status"] == "sending" and row["attempts"] == 1 for row in rows)
    assert len({row["id"] for row in rows}) == 200
    for claim, row in zip(asked, rows, strict=True):
        assert (row["source_partition"], row["source_offset"]) == (
            claim.source.partition,
            claim.source.offset,
        )
        assert (row["recipient"], row["organization_id"]) == (claim.recipient, claim.organization_id)
        assert (row["message_id"], row["args"]) == (claim.message_id, claim.args)
    assert await pool.fetchval("SELECT count(*) FROM email_notifications") == 200


async def test_a_source_or_message_id_claimed_twice_gives_one_row_and_one_lease(pool: asyncpg.Pool) -> None:
    """The same record twice, and two records carrying one Message-ID (the same event published
    twice), in one batch and against rows already there: one row each, leased to one caller."""
    claims = Claims(pool)
    before = await claims.claim(_claim(1))
    again = [_claim(1), _claim(2), _claim(2), _claim(3), _claim(4, message_id=_claim(3).message_id)]
    rows = await asyncio.gather(*(claims.claim(c) for c in again))
    assert rows[0]["id"] == before["id"] and not rows[0]["leased"]
    assert rows[1]["id"] == rows[2]["id"] and [rows[1]["leased"], rows[2]["leased"]].count(True) == 1
    assert rows[3]["id"] == rows[4]["id"] and [rows[3]["leased"], rows[4]["leased"]].count(True) == 1
    assert await pool.fetchval("SELECT count(*) FROM email_notifications") == 3


async def test_a_failing_shared_statement_falls_back_to_one_claim_each(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(p: asyncpg.Pool, batch: list[Claim]) -> dict[db.ClaimKey, db.Row]:
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    monkeypatch.setattr(db, "claim_many", failing)
    claims = Claims(pool)
    rows = await asyncio.gather(*(claims.claim(_claim(n)) for n in range(10)))
    assert all(row["leased"] for row in rows) and len({row["id"] for row in rows}) == 10


async def test_two_workers_claiming_the_same_records_in_opposite_orders_lease_each_row_once(
    pool: asyncpg.Pool,
) -> None:
    """Two workers (a Claims each) handed the same records (a rebalance) write shared INSERTs
    whose rows conflict in opposite orders: PostgreSQL may fail one as a deadlock, whose claims
    then go alone; every row exists once and exactly one caller of the two holds its lease."""
    for round_ in range(5):
        asked = [_claim(1000 * round_ + n) for n in range(50)]
        first, second = Claims(pool), Claims(pool)
        rows = await asyncio.gather(
            asyncio.gather(*(first.claim(c) for c in asked)),
            asyncio.gather(*(second.claim(c) for c in reversed(asked))),
        )
        ones, others = rows[0], list(reversed(rows[1]))
        for one, other in zip(ones, others, strict=True):
            assert one["id"] == other["id"]
            assert [one["leased"], other["leased"]].count(True) == 1
    assert await pool.fetchval("SELECT count(*) FROM email_notifications") == 250
