"""All the security service's SQL. Each write declares its events in its transaction.

The password hash is read only by `login` and written only by the user writes; every row this
module returns for a user is `events.public_user` (no hash).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from kafka_integration import UnitOfWork, unit_of_work
from security import events
from security.config import LoginPolicy
from servicekit.errors import Conflict, NotFound, TooManyRequests, Unauthorized

Row = dict[str, Any]

USER_COLUMNS = "id, email, admin, created_at, updated_at"
WRONG_CREDENTIALS = "wrong email or password"


def _duplicate(email: str) -> Conflict:
    return Conflict(f"a user with email {email} already exists")


async def _revoke_user_tokens(uow: UnitOfWork, user_id: int) -> None:
    """Every token of the user issued until now stops working; new ones start at the cut-off."""
    not_before = events.cut_off()
    await uow.conn.execute(
        "UPDATE users SET tokens_valid_from = GREATEST(tokens_valid_from, $2) WHERE id = $1",
        user_id,
        not_before,
    )
    uow.emit(events.user_revoked(user_id, not_before))
    await _publish_keys(uow, user_id)


async def _publish_keys(uow: UnitOfWork, user_id: int, only_key: str | None = None) -> None:
    """Publish the user's API keys (or one of them) with the user's email, admin flag and grants
    as they stand in this transaction: a key acts with its user's grants of the moment."""
    conn = uow.conn
    user = await conn.fetchrow("SELECT id, email, admin FROM users WHERE id = $1", user_id)
    if user is None:
        return
    keys = await conn.fetch(
        "SELECT id, key, secret_sha256 FROM api_keys WHERE user_id = $1 AND ($2::text IS NULL OR key = $2)"
        " ORDER BY id",
        user_id,
        only_key,
    )
    if not keys:
        return
    orgs = {
        r["organization_id"]: r["role"]
        for r in await conn.fetch("SELECT organization_id, role FROM grants WHERE user_id = $1", user_id)
    }
    uow.emit(*(events.api_key(key, user, orgs) for key in keys))


async def _revoke_keys(uow: UnitOfWork, user_id: int) -> None:
    """Delete the user's API keys and tombstone them (the user's lock is held)."""
    for key in await uow.conn.fetch("DELETE FROM api_keys WHERE user_id = $1 RETURNING key", user_id):
        uow.emit(events.api_key_revoked(key["key"]))


async def _keep_an_admin(conn: asyncpg.Connection, leaving_id: int) -> None:
    """Refuse to remove or demote the last administrator (under a lock, so two at once cannot)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('security:admins'))")
    others = await conn.fetchval("SELECT count(*) FROM users WHERE admin AND id <> $1", leaving_id)
    if others == 0:
        raise Conflict("the last administrator cannot be removed or demoted")


# users


async def create_user(pool: asyncpg.Pool, email: str, password_hash: str, admin: bool) -> Row:
    async with unit_of_work(pool) as uow:
        try:
            found = await uow.conn.fetchrow(
                "INSERT INTO users (email, password_hash, admin) VALUES ($1, $2, $3)"
                f" RETURNING {USER_COLUMNS}",
                email,
                password_hash,
                admin,
            )
        except asyncpg.UniqueViolationError:
            raise _duplicate(email) from None
        row = dict(found)
        uow.emit(*events.user("created", row))
    return row


async def bootstrap_admin(pool: asyncpg.Pool, email: str, password_hash: str) -> Row | None:
    """Create the first administrator if there is no user at all; None if there is one."""
    async with unit_of_work(pool) as uow:
        await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtext('security:bootstrap'))")
        if await uow.conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
            return None
        found = await uow.conn.fetchrow(
            f"INSERT INTO users (email, password_hash, admin) VALUES ($1, $2, true) RETURNING {USER_COLUMNS}",
            email,
            password_hash,
        )
        row = dict(found)
        uow.emit(*events.user("created", row))
    return row


def _no_user(user_id: int) -> NotFound:
    return NotFound(f"no user with id {user_id}")


async def _require_user(conn: asyncpg.Connection, user_id: int, *, lock: bool = False) -> None:
    """NotFound unless the user exists; with `lock`, their row is held to the transaction's end."""
    sql = "SELECT id FROM users WHERE id = $1" + (" FOR UPDATE" if lock else "")
    if await conn.fetchval(sql, user_id) is None:
        raise _no_user(user_id)


async def get_user(pool: asyncpg.Pool, user_id: int) -> Row:
    row = await pool.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise _no_user(user_id)
    return dict(row)


async def list_users(pool: asyncpg.Pool, after: int, limit: int) -> list[Row]:
    rows = await pool.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit
    )
    return [dict(r) for r in rows]


async def update_user(pool: asyncpg.Pool, user_id: int, changes: Row) -> Row:
    """Apply `email`, `password_hash` and `admin` when given. A change of any of them (all are in
    or behind the user's tokens) revokes the user's tokens; a new password revokes their API keys
    too (the remedy for a stolen credential must end a key minted with it, which never expires)."""
    async with unit_of_work(pool) as uow:
        conn = uow.conn
        before = await conn.fetchrow("SELECT email, admin FROM users WHERE id = $1 FOR UPDATE", user_id)
        if before is None:
            raise _no_user(user_id)
        if before["admin"] and changes.get("admin") is False:
            await _keep_an_admin(conn, user_id)
        try:
            found = await conn.fetchrow(
                f"""
                UPDATE users SET
                    email = COALESCE($2, email),
                    password_hash = COALESCE($3, password_hash),
                    admin = COALESCE($4, admin),
                    updated_at = now()
                WHERE id = $1 RETURNING {USER_COLUMNS}
                """,
                user_id,
                changes.get("email"),
                changes.get("password_hash"),
                changes.get("admin"),
            )
        except asyncpg.UniqueViolationError:
            raise _duplicate(str(changes.get("email"))) from None
        row = dict(found)
        uow.emit(*events.user("updated", row))
        if changes.get("password_hash") is not None:
            await _revoke_keys(uow, user_id)
        if (
            changes.get("password_hash") is not None
            or row["email"] != before["email"]
            or row["admin"] != before["admin"]
        ):
            await _revoke_user_tokens(uow, user_id)
    return row


async def delete_user(pool: asyncpg.Pool, user_id: int) -> Row:
    """Delete the user and their grants (each grant's event too); their tokens stop working."""
    async with unit_of_work(pool) as uow:
        conn = uow.conn
        before = await conn.fetchrow("SELECT admin FROM users WHERE id = $1 FOR UPDATE", user_id)
        if before is None:
            raise _no_user(user_id)
        if before["admin"]:
            await _keep_an_admin(conn, user_id)
        for grant in await conn.fetch("DELETE FROM grants WHERE user_id = $1 RETURNING *", user_id):
            uow.emit(*events.grant("destroyed", dict(grant)))
        await _revoke_keys(uow, user_id)
        await _revoke_user_tokens(uow, user_id)
        row = dict(await conn.fetchrow(f"DELETE FROM users WHERE id = $1 RETURNING {USER_COLUMNS}", user_id))
        uow.emit(*events.user("destroyed", row))
    return row


# grants


async def _lock_user(conn: asyncpg.Connection, user_id: int) -> None:
    """The user's row locked to the transaction's end (every write that publishes the user's
    keys takes it); NotFound if there is no such user."""
    await _require_user(conn, user_id, lock=True)


async def put_grant(pool: asyncpg.Pool, user_id: int, organization_id: int, role: str) -> tuple[Row, bool]:
    """Give the user `role` in the organization; (grant, created). Giving the role the user
    already has changes nothing and emits nothing."""
    async with unit_of_work(pool) as uow:
        conn = uow.conn
        await _lock_user(conn, user_id)
        existing = await conn.fetchrow(
            "SELECT * FROM grants WHERE user_id = $1 AND organization_id = $2", user_id, organization_id
        )
        if existing is not None and existing["role"] == role:
            return dict(existing), False
        if existing is None:
            found = await conn.fetchrow(
                "INSERT INTO grants (user_id, organization_id, role) VALUES ($1, $2, $3) RETURNING *",
                user_id,
                organization_id,
                role,
            )
        else:
            found = await conn.fetchrow(
                "UPDATE grants SET role = $2, updated_at = now() WHERE id = $1 RETURNING *",
                existing["id"],
                role,
            )
        row = dict(found)
        uow.emit(*events.grant("created" if existing is None else "updated", row))
        await _revoke_user_tokens(uow, user_id)
    return row, existing is None


async def list_grants(pool: asyncpg.Pool, user_id: int) -> list[Row]:
    async with pool.acquire() as conn:
        await _require_user(conn, user_id)
        rows = await conn.fetch("SELECT * FROM grants WHERE user_id = $1 ORDER BY organization_id", user_id)
    return [dict(r) for r in rows]


async def delete_grant(pool: asyncpg.Pool, user_id: int, organization_id: int) -> Row:
    async with unit_of_work(pool) as uow:
        conn = uow.conn
        await _lock_user(conn, user_id)
        found = await conn.fetchrow(
            "DELETE FROM grants WHERE user_id = $1 AND organization_id = $2 RETURNING *",
            user_id,
            organization_id,
        )
        if found is None:
            raise NotFound(f"user {user_id} has no grant for organization {organization_id}")
        row = dict(found)
        uow.emit(*events.grant("destroyed", row))
        await _revoke_user_tokens(uow, user_id)
    return row


# login and logout


async def login_allowed(pool: asyncpg.Pool, email: str, address: str, policy: LoginPolicy) -> Row | None:
    """Before a password is checked: TooManyRequests if the (email, address) pair is still
    waiting out its delay; otherwise the user's id and password hash (None for an unknown
    email), for the caller to check AFTER the connection is back in the pool."""
    async with pool.acquire() as conn:
        wait = await conn.fetchval(
            """
            SELECT ceil(extract(epoch FROM blocked_until - now()))::int FROM login_attempts
            WHERE email = $1 AND address = $2 AND blocked_until > now()
              AND last_attempt >= now() - make_interval(secs => $3)
            """,
            email,
            address,
            float(policy.forget_seconds),
        )
        if wait is not None:
            wait = max(int(wait), 1)
            raise TooManyRequests(
                f"too many failed logins for this email from this address; try again in {wait} seconds", wait
            )
        user = await conn.fetchrow("SELECT id, password_hash FROM users WHERE email = $1", email)
    return dict(user) if user is not None else None


async def record_login_failure(pool: asyncpg.Pool, email: str, address: str, policy: LoginPolicy) -> int:
    """Count a failure of the pair (from zero again after `forget_seconds` of quiet) and set the
    delay before its next attempt; the pair's failures."""
    async with pool.acquire() as conn, conn.transaction():
        failures: int = await conn.fetchval(
            """
            INSERT INTO login_attempts AS a (email, address, failures, last_attempt) VALUES ($1, $2, 1, now())
            ON CONFLICT (email, address) DO UPDATE SET
                failures = CASE WHEN a.last_attempt < now() - make_interval(secs => $3)
                                THEN 1 ELSE a.failures + 1 END,
                last_attempt = now()
            RETURNING failures
            """,
            email,
            address,
            float(policy.forget_seconds),
        )
        delay = policy.delay_after(failures)
        await conn.execute(
            """
            UPDATE login_attempts
            SET blocked_until = CASE WHEN $3::float8 > 0 THEN now() + make_interval(secs => $3::float8) END
            WHERE email = $1 AND address = $2
            """,
            email,
            address,
            float(delay),
        )
    return failures


async def finish_login(
    pool: asyncpg.Pool, email: str, address: str, user_id: int, password_hash: str
) -> tuple[Row, dict[int, str], int]:
    """After the password matched `password_hash`: forget the pair's failures; the user, their
    grants and their tokens' cut-off. A user deleted or given a new password meanwhile is
    refused as wrong credentials."""
    async with pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(
            f"SELECT {USER_COLUMNS}, tokens_valid_from FROM users WHERE id = $1 AND password_hash = $2",
            user_id,
            password_hash,
        )
        if user is None:
            raise Unauthorized(WRONG_CREDENTIALS)
        await conn.execute("DELETE FROM login_attempts WHERE email = $1 AND address = $2", email, address)
        orgs = {
            r["organization_id"]: r["role"]
            for r in await conn.fetch("SELECT organization_id, role FROM grants WHERE user_id = $1", user_id)
        }
    return events.public_user(user), orgs, int(user["tokens_valid_from"])


async def unlock(pool: asyncpg.Pool, email: str) -> int:
    """The operator's unlock: forget every failed login of the email, from every address; how
    many addresses were waiting or counting."""
    found = await pool.fetchval(
        "WITH gone AS (DELETE FROM login_attempts WHERE email = $1 RETURNING 1) SELECT count(*) FROM gone",
        email,
    )
    return int(found)


async def forget_login_attempts(pool: asyncpg.Pool, policy: LoginPolicy, limit: int = 1000) -> int:
    """Delete up to `limit` pairs with no attempt for `forget_seconds` (they would start from
    zero anyway): the table does not grow with every address that ever tried."""
    found = await pool.fetchval(
        """
        WITH gone AS (
            DELETE FROM login_attempts WHERE ctid IN (
                SELECT ctid FROM login_attempts
                WHERE last_attempt < now() - make_interval(secs => $1) LIMIT $2
            ) RETURNING 1
        ) SELECT count(*) FROM gone
        """,
        float(policy.forget_seconds),
        limit,
    )
    return int(found)


async def revoke_token(pool: asyncpg.Pool, jti: str, exp: int) -> None:
    """Logout: the token's id goes on the `revocations` topic (through the outbox), and is kept
    here until it expires, to be tombstoned then."""
    async with unit_of_work(pool) as uow:
        await uow.conn.execute(
            "INSERT INTO revoked_tokens (jti, exp) VALUES ($1, $2) ON CONFLICT DO NOTHING", jti, exp
        )
        uow.emit(events.token_revoked(jti, exp))


async def tombstone_expired_revocations(pool: asyncpg.Pool, before: int, limit: int = 1000) -> int:
    """Tombstone on the topic (through the outbox) up to `limit` token revocations whose token
    expired before `before` (epoch seconds), so compaction forgets them; how many. Several
    instances may run this at once: each row is taken by one (SKIP LOCKED)."""
    async with unit_of_work(pool) as uow:
        rows = await uow.conn.fetch(
            """
            DELETE FROM revoked_tokens WHERE jti IN (
                SELECT jti FROM revoked_tokens WHERE exp < $1 ORDER BY exp LIMIT $2 FOR UPDATE SKIP LOCKED
            ) RETURNING jti
            """,
            before,
            limit,
        )
        uow.emit(*(events.token_revocation_expired(r["jti"]) for r in rows))
    return len(rows)


# API keys (servicekit.apikeys)

API_KEY_COLUMNS = "id, key, user_id, description, created_at"
# Each key is published again at every change of its user, in that change's transaction (and
# held in memory by every service that reads them): a user may not have them without end.
MAX_API_KEYS_PER_USER = 10


async def create_api_key(
    pool: asyncpg.Pool, user_id: int, key: str, secret_sha256: str, description: str
) -> Row:
    """Store a key (its secret's hash only) and publish it with its user's grants."""
    async with unit_of_work(pool) as uow:
        await _lock_user(uow.conn, user_id)
        held = await uow.conn.fetchval("SELECT count(*) FROM api_keys WHERE user_id = $1", user_id)
        if held >= MAX_API_KEYS_PER_USER:
            raise Conflict(
                f"user {user_id} has {held} API keys, the most a user may have"
                f" ({MAX_API_KEYS_PER_USER}): revoke one first"
            )
        found = await uow.conn.fetchrow(
            "INSERT INTO api_keys (key, secret_sha256, user_id, description) VALUES ($1, $2, $3, $4)"
            f" RETURNING {API_KEY_COLUMNS}",
            key,
            secret_sha256,
            user_id,
            description,
        )
        await _publish_keys(uow, user_id, only_key=key)
    return dict(found)


async def list_api_keys(pool: asyncpg.Pool, user_id: int, after: int, limit: int) -> list[Row]:
    async with pool.acquire() as conn:
        await _require_user(conn, user_id)
        rows = await conn.fetch(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            user_id,
            after,
            limit,
        )
    return [dict(r) for r in rows]


async def revoke_api_key(pool: asyncpg.Pool, user_id: int, key_id: int) -> Row:
    """Delete the key and tombstone it on the topic: it stops working wherever it is checked.
    Under the user's lock, as every write that publishes the user's keys: a change of the user
    that read the key before this delete committed would otherwise publish it after the
    tombstone (the outbox is written at commit), and the key would be accepted again for ever."""
    async with unit_of_work(pool) as uow:
        await _lock_user(uow.conn, user_id)
        found = await uow.conn.fetchrow(
            f"DELETE FROM api_keys WHERE user_id = $1 AND id = $2 RETURNING {API_KEY_COLUMNS}",
            user_id,
            key_id,
        )
        if found is None:
            raise NotFound(f"user {user_id} has no API key with id {key_id}")
        uow.emit(events.api_key_revoked(found["key"]))
    return dict(found)
