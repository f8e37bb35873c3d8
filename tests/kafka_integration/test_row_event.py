"""A row and its event in one statement (kafka_integration.row_event): the value PostgreSQL writes
is byte for byte the events' encoding of the returned row, the event commits with the row or not
at all, and the size limit holds as in a unit of work."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import asyncpg
import pytest

from kafka_integration import EventTooLarge, RowEventWrite, collect_pending, entity_event
from kafka_integration.encoding import dumps

COLUMNS = (("id", "int"), ("name", "text"), ("at", "timestamptz"), ("owner", "int"))


@pytest.fixture
async def things(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute(
        """CREATE TABLE IF NOT EXISTS owners (id bigint PRIMARY KEY);
           CREATE TABLE IF NOT EXISTS things (
               id bigserial PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
               owner bigint REFERENCES owners (id));
           INSERT INTO owners VALUES (7) ON CONFLICT DO NOTHING"""
    )
    return pool


CREATED = RowEventWrite(
    "INSERT INTO things (name, at, owner) VALUES ($1, COALESCE($2, now()), $3) RETURNING *",
    topic="things",
    entity="thing",
    action="created",
    columns=COLUMNS,  # type: ignore[arg-type]
)

HOSTILE_NAMES = [
    "plain",
    'quote " and backslash \\ and slash /',
    "tab\tnewline\ncarriage\rbell\x07 escape\x1b unit\x1f del\x7f",
    "unicode é ß 漢字 🎉 \u2028\u2029 \u200d",
    "'; DROP TABLE things; --",
    "x" * 5000,
]
TIMES = [
    None,  # now(): microseconds almost surely not zero
    dt.datetime(2026, 11, 26, 15, 28, 48, tzinfo=dt.UTC),  # no microseconds: no fraction written
    dt.datetime(2026, 1, 2, 3, 4, 5, 10, tzinfo=dt.UTC),  # leading zeros of the microseconds kept
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    dt.datetime(999, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),  # a year of three digits: four written
    dt.datetime.max.replace(tzinfo=dt.UTC),  # 'infinity' in PostgreSQL; asyncpg's row says datetime.max
    dt.datetime.min.replace(tzinfo=dt.UTC),  # '-infinity'; datetime.min
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("at", TIMES)
async def test_the_value_is_the_events_encoding_of_the_returned_row(
    things: asyncpg.Pool, name: str, at: dt.datetime | None
) -> None:
    for owner in (None, 7):
        async with collect_pending() as pending:
            row = await CREATED.run(things, [name, at, owner], known={"name": name, "owner": owner})
        assert row is not None and row["name"] == name and row["owner"] == owner
        value, event_type = await things.fetchrow(
            "SELECT value, headers->>'event_type' FROM kafka_outbox WHERE id = $1", pending[0]
        )
        assert value == dumps({**row, "action": "created"})
        assert event_type == "thing_created"  # the headers are a JSON object, as the relay reads them


async def test_the_value_does_not_depend_on_the_sessions_time_zone_or_date_style(
    things: asyncpg.Pool,
) -> None:
    """The server's zone is UTC here: only a session in another zone shows a timestamp written in
    the session's zone rather than UTC."""
    async with things.acquire() as conn:
        await conn.execute("SET TIME ZONE 'Asia/Kathmandu'; SET DateStyle = 'SQL, DMY'")
        for at in TIMES:
            async with collect_pending() as pending:
                # A connection answers `fetchrow` as the pool does: the session's settings apply.
                row = await CREATED.run(conn, ["zoned", at, None], known={"name": "zoned", "owner": None})
            assert row is not None
            value = await conn.fetchval("SELECT value FROM kafka_outbox WHERE id = $1", pending[0])
            assert value == dumps({**row, "action": "created"})


async def test_a_failed_write_leaves_no_event(things: asyncpg.Pool) -> None:
    before = await things.fetchval("SELECT count(*) FROM kafka_outbox")
    async with collect_pending() as pending:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await CREATED.run(things, ["orphan", None, 404], known={"name": "orphan", "owner": 404})
    assert pending == []
    assert await things.fetchval("SELECT count(*) FROM kafka_outbox") == before
    assert await things.fetchval("SELECT count(*) FROM things WHERE name = 'orphan'") == 0


async def test_an_event_over_the_limit_is_refused_before_anything_is_written(things: asyncpg.Pool) -> None:
    before = await things.fetchval("SELECT count(*) FROM things")
    async with collect_pending(max_event_bytes=1000) as pending:
        with pytest.raises(EventTooLarge):
            await CREATED.run(things, ["y" * 1000, None, None], known={"name": "y" * 1000, "owner": None})
    assert pending == []
    assert await things.fetchval("SELECT count(*) FROM things") == before


def test_the_first_column_must_be_the_key() -> None:
    with pytest.raises(ValueError, match="id"):
        RowEventWrite(
            "INSERT ... RETURNING *", topic="t", entity="t", action="created", columns=[("name", "text")]
        )


async def test_an_event_at_the_limit_is_written(things: asyncpg.Pool) -> None:
    """The quick bound from the texts' lengths says "maybe too large"; the exact size decides."""
    name = "z" * 300
    longest = {
        "id": -(2**63),
        "name": name,
        "at": dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        "owner": None,
    }
    event = entity_event("things", "thing", "created", longest)
    exact = replace(event, time=dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)).size()
    async with collect_pending(max_event_bytes=exact) as pending:
        row = await CREATED.run(things, [name, None, None], known={"name": name, "owner": None})
    assert row is not None and len(pending) == 1
