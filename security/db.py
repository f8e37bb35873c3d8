"""All the security service's SQL. Each write declares its events in its transaction.

The password hash is read only by `login` and written only by the user writes; every row this
module returns for a user is `events.public_user` (no hash).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


async def get_user(pool: asyncpg.Pool, user_id: int) -> Row:
    row = await pool.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound(f"no user with id {user_id}")
    return dict(row)


async def list_users(pool: asyncpg.Pool, after: int, limit: int) -> list[Row]:
    rows = await pool.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after, limit
    )
    return [dict(r) for r in rows]


async def update_user(pool: asyncpg.Pool, user_id: int, changes: Row) -> Row:
    """Apply `email`, `password_hash` and `admin` when given. A change of any of them (all are in
    or behind the user's tokens) revokes the user's tokens."""
    async with unit_of_work(pool) as uow:
        conn = uow.conn
        before = await conn.fetchrow("SELECT email, admin FROM users WHERE id = $1 FOR UPDATE", user_id)
        if before is None:
            raise NotFound(f"no user with id {user_id}")
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
            raise NotFound(f"no user with id {user_id}")
        if before["admin"]:
            await _keep_an_admin(conn, user_id)
        for grant in await conn.fetch("DELETE FROM grants WHERE user_id = $1 RETURNING *", user_id):
            uow.emit(*events.grant("destroyed", dict(grant)))
        await _revoke_user_tokens(uow, user_id)
        row = dict(await conn.fetchrow(f"DELETE FROM users WHERE id = $1 RETURNING {USER_COLUMNS}", user_id))
        uow.emit(*events.user("destroyed", row))
    return row


# grants


async def _lock_user(conn: asyncpg.Connection, user_id: int) -> None:
    if await conn.fetchval("SELECT id FROM users WHERE id = $1 FOR UPDATE", user_id) is None:
        raise NotFound(f"no user with id {user_id}")


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
        if await conn.fetchval("SELECT id FROM users WHERE id = $1", user_id) is None:
            raise NotFound(f"no user with id {user_id}")
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


async def login(
    pool: asyncpg.Pool,
    email: str,
    policy: LoginPolicy,
    check: Callable[[str | None], Awaitable[bool]],
) -> tuple[Row, dict[int, str], int]:
    """The user whose password `check` accepts, their grants and their tokens' cut-off.

    Attempts for one email are serialized (an advisory lock held while the password is checked),
    so parallel guesses cannot pass the limit. A locked email gets TooManyRequests without any
    check; a failure (unknown email or wrong password, the same Unauthorized) is counted and
    committed before it is raised; a success forgets the failures.
    """
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"security:login:{email}")
            wait = await conn.fetchval(
                "SELECT ceil(extract(epoch FROM locked_until - now()))::int FROM login_failures"
                " WHERE email = $1 AND locked_until > now()",
                email,
            )
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed logins; try again in {max(wait, 1)} seconds", max(wait, 1)
                )
            user = await conn.fetchrow(
                f"SELECT {USER_COLUMNS}, password_hash, tokens_valid_from FROM users WHERE email = $1", email
            )
            if await check(user["password_hash"] if user is not None else None) and user is not None:
                await conn.execute("DELETE FROM login_failures WHERE email = $1", email)
                orgs = {
                    r["organization_id"]: r["role"]
                    for r in await conn.fetch(
                        "SELECT organization_id, role FROM grants WHERE user_id = $1", user["id"]
                    )
                }
                return events.public_user(user), orgs, int(user["tokens_valid_from"])
            failures = await conn.fetchval(
                """
                INSERT INTO login_failures AS f (email, failures, window_start) VALUES ($1, 1, now())
                ON CONFLICT (email) DO UPDATE SET
                    failures = CASE WHEN f.window_start > now() - make_interval(secs => $2)
                                    THEN f.failures + 1 ELSE 1 END,
                    window_start = CASE WHEN f.window_start > now() - make_interval(secs => $2)
                                        THEN f.window_start ELSE now() END,
                    locked_until = NULL
                RETURNING failures
                """,
                email,
                float(policy.window_seconds),
            )
            if failures >= policy.max_failures:
                await conn.execute(
                    "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2)"
                    " WHERE email = $1",
                    email,
                    float(policy.lock_seconds),
                )
    raise Unauthorized(WRONG_CREDENTIALS)


async def revoke_token(pool: asyncpg.Pool, jti: str, exp: int) -> None:
    """Logout: the token's id goes on the `revocations` topic (through the outbox)."""
    async with unit_of_work(pool) as uow:
        uow.emit(events.token_revoked(jti, exp))
