"""Notifications as an operator sees them: filtered by status, organization and template, one
with its message as the recipient sees it, and the retry of a `failed` one (back to `created`,
its failures forgotten: the worker's sweep sends it within seconds). The retry is recorded.
Only this system's tenant's (NOTIFICATIONS_TENANT, as its workers): the table is shared."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import asyncpg

from console.config import OperationsSettings
from console.errors import InvalidInput, NotAllowed, NotFound
from kafka_integration.tail import escape_controls

STATUSES = ("created", "sending", "sent", "failed")
MAX_ID = 2**63 - 1
MAX_SHOWN = 200_000  # characters of a part (or of the raw message) shown at most
LINES = "\n\t"  # the control characters a part or the source shows as they are


def check_id(raw: Any, field: str = "id") -> int:
    """A positive bigint id from text or int; InvalidInput naming `field` otherwise."""
    text = str(raw)
    if len(text) > 19 or not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise InvalidInput(field, "must be a positive integer id")
    return int(text)


def check_filters(status: str | None, organization: str | None, template: str | None) -> dict[str, Any]:
    """The list's filters, checked; None or '' means any."""
    if status and status not in STATUSES:
        raise InvalidInput("status", f"one of {', '.join(STATUSES)}")
    if template and (len(template) > 100 or not template.isprintable()):
        raise InvalidInput("template", "at most 100 printable characters")
    return {
        "status": status or None,
        "organization": check_id(organization, "organization") if organization else None,
        "template": template or None,
    }


def _table(ops: OperationsSettings) -> str:
    return f'"{ops.schemas["notifications"]}".email_notifications'


async def listing(
    pool: asyncpg.Pool,
    ops: OperationsSettings,
    *,
    status: str | None = None,
    organization: int | None = None,
    template: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The latest notifications matching the filters, newest first."""
    table = _table(ops)
    try:
        rows = await _fetch_listing(pool, table, ops.tenant, status, organization, template, limit)
    except asyncpg.UndefinedTableError:  # the notifications service has not started yet
        return []
    return [dict(r) for r in rows]


async def _fetch_listing(
    pool: asyncpg.Pool,
    table: str,
    tenant: str,
    status: str | None,
    organization: int | None,
    template: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT id, template, recipient, organization_id, status, error, attempts, failures,
                   source_topic, source_partition, source_offset, message_id, created_at, sent_at
            FROM {table}
            WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR organization_id = $2)
              AND ($3::text IS NULL OR template = $3) AND tenant = $5
            ORDER BY id DESC LIMIT $4""",
        status,
        organization,
        template,
        limit,
        tenant,
    )
    return rows


async def counts(pool: asyncpg.Pool, ops: OperationsSettings) -> dict[str, int]:
    """How many notifications are in each status."""
    table = _table(ops)
    try:
        rows = await pool.fetch(
            f"SELECT status, count(*) AS n FROM {table} WHERE tenant = $1 GROUP BY status", ops.tenant
        )
    except asyncpg.UndefinedTableError:
        return dict.fromkeys(STATUSES, 0)
    return {**dict.fromkeys(STATUSES, 0), **{r["status"]: r["n"] for r in rows}}


async def one(pool: asyncpg.Pool, ops: OperationsSettings, ident: int) -> dict[str, Any]:
    table = _table(ops)
    try:
        row = await pool.fetchrow(f"SELECT * FROM {table} WHERE id = $1 AND tenant = $2", ident, ops.tenant)
    except asyncpg.UndefinedTableError:
        row = None
    if row is None:
        raise NotFound(f"no notification {ident}")
    return dict(row)


async def retry(pool: asyncpg.Pool, ops: OperationsSettings, ident: int, actor: str) -> None:
    """A `failed` notification back to `created` (sent again by the worker); recorded.
    NotFound or NotAllowed (not failed) otherwise; nothing changes then."""
    table = _table(ops)
    async with pool.acquire() as conn, conn.transaction():
        try:
            status = await conn.fetchval(
                f"SELECT status FROM {table} WHERE id = $1 AND tenant = $2 FOR UPDATE", ident, ops.tenant
            )
        except asyncpg.UndefinedTableError:
            status = None
        if status is None:
            raise NotFound(f"no notification {ident}")
        if status != "failed":
            raise NotAllowed(f"notification {ident} is {status}, not failed: only a failed one is retried")
        await conn.execute(
            f"""UPDATE {table} SET status = 'created', failures = 0, error = NULL, lease_until = NULL
                WHERE id = $1""",
            ident,
        )
        await conn.execute(
            """INSERT INTO console_actions (action, actor, source, target)
               VALUES ('retry', $1, $2, 'created')""",
            actor,
            f"notification:{ident}",
        )


@dataclass(frozen=True)
class Message:
    """A notification's message as shown: its headers, subject, text and HTML parts, the raw
    source; `exact` when these are the bytes that went to the SMTP server (not a rendering now)."""

    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()
    raw: str = ""
    exact: bool = False


def as_sent(raw: bytes) -> Message:
    """The message the SMTP server took, from its stored bytes, as the recipient's mail program
    reads it. Bytes that are not a well-formed message still show (what can be read, and the
    raw source); control characters show escaped; nothing here raises."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    headers = tuple((escape_controls(str(k)), _header(parsed, k)) for k in parsed.keys())
    source = escape_controls(
        raw[: MAX_SHOWN * 4].decode("utf-8", errors="replace").replace("\r\n", "\n"), LINES
    )
    return Message(
        subject=_header(parsed, "Subject"),
        text=_part(parsed, "plain"),
        html=_part(parsed, "html"),
        headers=headers,
        raw=source[:MAX_SHOWN],
        exact=True,
    )


def _header(message: Any, name: str) -> str:
    try:
        return escape_controls(str(message.get(name, ""))[:MAX_SHOWN])
    except Exception as exc:  # a header the parser cannot decode shows as what it is
        return f"(unreadable: {type(exc).__name__})"


def _part(message: Any, kind: str) -> str:
    try:
        part = message.get_body(preferencelist=(kind,)) if isinstance(message, EmailMessage) else None
        if part is None:
            return ""
        try:
            content = part.get_content()
        except (LookupError, ValueError):  # an unknown charset or a broken encoding
            payload = part.get_payload(decode=True)
            content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
        return escape_controls(str(content)[:MAX_SHOWN].replace("\r\n", "\n"), LINES)
    except Exception as exc:
        return f"(this part cannot be read: {type(exc).__name__})"
