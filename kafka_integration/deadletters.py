"""The outbox's dead letters: events the relay moved aside because Kafka can never take them as
they are (see relay.py). They wait in `kafka_outbox_dead` with the error until an operator
re-publishes them (after fixing the cause) or discards them.

Re-publishing moves the event back into `kafka_outbox` under a new id, so the relay sends it
after everything already there. Events of the same key that were published after it stay
before it: a re-published full row becomes the key's latest state, so re-publish one only if
that is still right (otherwise discard it; the next write of the entity publishes its row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from kafka_integration.errors import NoSuchDeadLetter


async def bury(conn: asyncpg.Connection, dead: Sequence[tuple[int, str]], published: Sequence[int]) -> None:
    """In one transaction: move the `dead` outbox rows (id, error) to the dead-letter table and
    delete them and the `published` ones from the outbox."""
    async with conn.transaction():
        if dead:
            await conn.execute(
                """INSERT INTO kafka_outbox_dead (id, topic, key, value, headers, created_at, error)
                   SELECT o.id, o.topic, o.key, o.value, o.headers, o.created_at, d.error
                   FROM kafka_outbox o
                   JOIN unnest($1::bigint[], $2::text[]) AS d(id, error) ON d.id = o.id""",
                [i for i, _ in dead],
                [e for _, e in dead],
            )
        await conn.execute(
            "DELETE FROM kafka_outbox WHERE id = ANY($1::bigint[])", [*published, *(i for i, _ in dead)]
        )


async def listing(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The dead letters, oldest first, with the size of their value (not the value itself)."""
    rows = await conn.fetch(
        """SELECT id, topic, key, octet_length(value) AS value_bytes, headers, created_at, dead_at, error
           FROM kafka_outbox_dead ORDER BY id"""
    )
    return [dict(r) for r in rows]


async def republish(conn: asyncpg.Connection, ident: int) -> int:
    """Move a dead letter back into the outbox (behind what is there); its new outbox id."""
    new_id: int | None = await conn.fetchval(
        """WITH dead AS (DELETE FROM kafka_outbox_dead WHERE id = $1 RETURNING topic, key, value, headers),
                ins AS (INSERT INTO kafka_outbox (topic, key, value, headers)
                        SELECT topic, key, value, headers FROM dead RETURNING id)
           SELECT ins.id FROM ins, (SELECT pg_notify('kafka_outbox_' || current_schema(), '')) AS wake""",
        ident,
    )
    if new_id is None:
        raise NoSuchDeadLetter(f"no dead-lettered event with id {ident}")
    return new_id


async def discard(conn: asyncpg.Connection, ident: int) -> None:
    """Delete a dead letter for good."""
    if await conn.fetchval("DELETE FROM kafka_outbox_dead WHERE id = $1 RETURNING id", ident) is None:
        raise NoSuchDeadLetter(f"no dead-lettered event with id {ident}")
