"""All the notifications service's SQL: the record of every notification."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """The Kafka record a notification answers; a notification is unique per source and template."""

    topic: str
    partition: int
    offset: int


async def claim(
    pool: asyncpg.Pool,
    source: Source,
    *,
    template: str,
    recipient: str,
    organization_id: int | None,
    tenant: str,
    message_id: str,
    args: dict[str, Any],
    lease_seconds: float = 0.0,
) -> Row:
    """The notification row of this source (or of this Message-ID), created if new. Its status
    tells what is left to do. With `lease_seconds`, a new row is created already leased to the
    caller (`leased` is then true in the answer): one round trip less before sending."""
    row = await pool.fetchrow(
        """
        INSERT INTO email_notifications
            (source_topic, source_partition, source_offset, template, recipient, organization_id,
             tenant, message_id, args, status, attempts, lease_until)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9,
               CASE WHEN $10 > 0 THEN 'sending' ELSE 'created' END,
               CASE WHEN $10 > 0 THEN 1 ELSE 0 END,
               CASE WHEN $10 > 0 THEN now() + make_interval(secs => $10) END
        ON CONFLICT DO NOTHING
        RETURNING *, $10 > 0 AS leased
        """,
        source.topic,
        source.partition,
        source.offset,
        template,
        recipient,
        organization_id,
        tenant,
        message_id,
        args,
        lease_seconds,
    )
    if row is None:  # seen before: as this source record, or as the same message from another one
        row = await pool.fetchrow(
            """
            SELECT *, false AS leased FROM email_notifications
            WHERE (source_topic = $1 AND source_partition = $2 AND source_offset = $3 AND template = $4)
               OR message_id = $5
            ORDER BY id LIMIT 1
            """,
            source.topic,
            source.partition,
            source.offset,
            template,
            message_id,
        )
    return dict(row)


@dataclass(frozen=True)
class Claim:
    """One notification to record (`claim`'s arguments), for `claim_many`."""

    source: Source
    template: str
    recipient: str
    organization_id: int | None
    tenant: str
    message_id: str
    args: dict[str, Any]
    lease_seconds: float = 0.0


ClaimKey = tuple[str, int, int, str]  # source topic, partition, offset, template: unique


def claim_key(claim: Claim) -> ClaimKey:
    return (claim.source.topic, claim.source.partition, claim.source.offset, claim.template)


async def claim_one(pool: asyncpg.Pool, one: Claim) -> Row:
    """`claim` of one Claim: its row, created if new."""
    return await claim(
        pool,
        one.source,
        template=one.template,
        recipient=one.recipient,
        organization_id=one.organization_id,
        tenant=one.tenant,
        message_id=one.message_id,
        args=one.args,
        lease_seconds=one.lease_seconds,
    )


async def claim_many(pool: asyncpg.Pool, claims: Sequence[Claim]) -> dict[ClaimKey, Row]:
    """`claim` for many notifications in one INSERT (notifications.claims): the rows it created,
    by source and template, each leased as its claim asked. The same uniqueness holds (per
    source and template, and per Message-ID, against the table and within the batch: the later
    of two claims of one Message-ID is not inserted); a claim missing from the answer was seen
    before and is the caller's to claim alone (`claim` then finds its row)."""
    rows = await pool.fetch(
        """
        INSERT INTO email_notifications
            (source_topic, source_partition, source_offset, template, recipient, organization_id,
             tenant, message_id, args, status, attempts, lease_until)
        SELECT c.topic, c.part, c.off, c.template, c.recipient, c.org, c.tenant, c.message_id, c.args,
               CASE WHEN c.lease > 0 THEN 'sending' ELSE 'created' END,
               CASE WHEN c.lease > 0 THEN 1 ELSE 0 END,
               CASE WHEN c.lease > 0 THEN now() + make_interval(secs => c.lease) END
        FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                    $7::text[], $8::text[], $9::jsonb[], $10::float8[])
             WITH ORDINALITY AS c(topic, part, off, template, recipient, org, tenant, message_id, args,
                                  lease, n)
        ORDER BY c.n
        ON CONFLICT DO NOTHING
        RETURNING *, lease_until IS NOT NULL AS leased
        """,
        [c.source.topic for c in claims],
        [c.source.partition for c in claims],
        [c.source.offset for c in claims],
        [c.template for c in claims],
        [c.recipient for c in claims],
        [c.organization_id for c in claims],
        [c.tenant for c in claims],
        [c.message_id for c in claims],
        [c.args for c in claims],
        [c.lease_seconds for c in claims],
    )
    out: dict[ClaimKey, Row] = {}
    for row in rows:
        out[(row["source_topic"], row["source_partition"], row["source_offset"], row["template"])] = dict(row)
    return out


# Recorded, neither sent nor refused, and not leased by a sender right now.
SENDABLE = "(status = 'created' OR (status = 'sending' AND (lease_until IS NULL OR lease_until < now())))"


async def lease(pool: asyncpg.Pool, notification_id: int, seconds: float) -> bool:
    """Take the right to send this notification for `seconds`: False when it is sent, refused,
    or leased by another sender right now."""
    leased = await pool.fetchval(
        f"""
        UPDATE email_notifications
        SET status = 'sending', attempts = attempts + 1, lease_until = now() + make_interval(secs => $2)
        WHERE id = $1 AND {SENDABLE}
        RETURNING id
        """,
        notification_id,
        seconds,
    )
    return leased is not None


async def release(pool: asyncpg.Pool, notification_id: int) -> None:
    """Give a lease back (the send did not happen), so the row can be sent again at once."""
    await pool.execute(
        "UPDATE email_notifications SET lease_until = NULL WHERE id = $1 AND status = 'sending'",
        notification_id,
    )


async def mark_sent(pool: asyncpg.Pool, sent: Sequence[tuple[int, bytes | None]]) -> set[int]:
    """These notifications are sent, each with its message's bytes as the SMTP server took them
    (one statement for many: notifications.marks); the ids it marked. The bytes are written by the
    same UPDATE that marks the row `sent`, so what the recipient saw is on record exactly when the
    row says so; each row gets the bytes paired with its own id (the join on unnest's rows). A row
    locked by another transaction is skipped, not waited on (SKIP LOCKED, asking for the lock the
    UPDATE takes: FOR NO KEY UPDATE), so one busy row never holds up the others: the ids missing
    from the answer are the caller's to mark alone (`mark_one_sent`), and so are those of rows
    that do not exist."""
    rows = await pool.fetch(
        """WITH free AS (
               SELECT id FROM email_notifications WHERE id = ANY($1::bigint[])
               FOR NO KEY UPDATE SKIP LOCKED
           )
           UPDATE email_notifications AS n
           SET status = 'sent', sent_at = now(), error = NULL, sent_message = m.message
           FROM unnest($1::bigint[], $2::bytea[]) AS m(id, message) JOIN free USING (id)
           WHERE n.id = m.id
           RETURNING n.id""",
        [ident for ident, _ in sent],
        [message for _, message in sent],
    )
    return {int(row["id"]) for row in rows}


async def mark_one_sent(
    pool: asyncpg.Pool, notification_id: int, message: bytes | None, timeout: float = 10.0
) -> None:
    """This notification is sent, with its message's bytes: its own statement, waiting for its row
    if another transaction holds it (what `mark_sent` skipped, or could not write), for at most
    `timeout` seconds (TimeoutError: the caller tries again)."""
    async with asyncio.timeout(timeout):  # the pool's wait for a connection included
        await pool.execute(
            """UPDATE email_notifications
               SET status = 'sent', sent_at = now(), error = NULL, sent_message = $2
               WHERE id = $1""",
            notification_id,
            message,
        )


async def mark_failed(pool: asyncpg.Pool, notification_id: int, error: str) -> None:
    """Failed for good (refused, or not composable): never sent again. A sent row stays sent."""
    await pool.execute(
        "UPDATE email_notifications SET status = 'failed', error = $2 WHERE id = $1 AND status <> 'sent'",
        notification_id,
        error,
    )


async def record_failure(pool: asyncpg.Pool, notification_id: int, error: str, max_failures: int) -> str:
    """Count one failed attempt that was neither an SMTP refusal nor the server being unreachable
    (a bug, the database gone for a moment) and give the lease back; at the `max_failures`-th the
    notification is `failed` for good. Its status after this."""
    status = await pool.fetchval(
        """
        UPDATE email_notifications
        SET failures = failures + 1, error = $2, lease_until = NULL,
            status = CASE WHEN failures + 1 >= $3 THEN 'failed' ELSE status END
        WHERE id = $1 AND status IN ('created', 'sending')
        RETURNING status
        """,
        notification_id,
        error,
        max_failures,
    )
    return str(status) if status is not None else "gone"


async def pending(pool: asyncpg.Pool, tenant: str, limit: int = 10_000) -> list[Row]:
    """Notifications recorded but neither sent nor refused, and not leased now (e.g. left by a
    crash), oldest first."""
    rows = await pool.fetch(
        f"""
        SELECT * FROM email_notifications
        WHERE tenant = $1 AND {SENDABLE}
        ORDER BY id LIMIT $2
        """,
        tenant,
        limit,
    )
    return [dict(r) for r in rows]


def shown(row: asyncpg.Record) -> Row:
    """A notification as the API answers it: without the sent message's bytes (the console,
    which reads the database, shows those)."""
    out = dict(row)
    out.pop("sent_message", None)
    return out


async def list_notifications(
    pool: asyncpg.Pool, after: int, limit: int, status: str | None, only: list[int] | None = None
) -> list[Row]:
    """Notifications by id; `only` restricts them to those organizations (None: all)."""
    rows = await pool.fetch(
        """
        SELECT * FROM email_notifications
        WHERE id > $1 AND ($3::text IS NULL OR status = $3)
          AND ($4::bigint[] IS NULL OR organization_id = ANY($4))
        ORDER BY id LIMIT $2
        """,
        after,
        limit,
        status,
        only,
    )
    return [shown(r) for r in rows]


async def get_notification(pool: asyncpg.Pool, notification_id: int) -> Row | None:
    row = await pool.fetchrow("SELECT * FROM email_notifications WHERE id = $1", notification_id)
    return shown(row) if row is not None else None
