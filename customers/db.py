"""All the customers service's SQL. Each write declares its events in its transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from customers import events
from kafka_integration import UnitOfWork, unit_of_work
from servicekit.errors import Conflict, NotFound, ValidationFailed

Row = dict[str, Any]


async def create_organization(pool: asyncpg.Pool, name: str) -> Row:
    async with unit_of_work(pool) as uow:
        row = dict(await uow.conn.fetchrow("INSERT INTO organizations (name) VALUES ($1) RETURNING *", name))
        uow.emit(*events.organization("created", row))
    return row


async def get_organization(pool: asyncpg.Pool, org_id: int) -> Row:
    row = await pool.fetchrow("SELECT * FROM organizations WHERE id = $1", org_id)
    if row is None:
        raise NotFound(f"no organization with id {org_id}")
    return dict(row)


async def list_organizations(
    pool: asyncpg.Pool, after: int, limit: int, only: list[int] | None = None
) -> list[Row]:
    """Organizations by id; `only` restricts them to those ids (None: all)."""
    rows = await pool.fetch(
        """SELECT * FROM organizations WHERE id > $1 AND ($3::bigint[] IS NULL OR id = ANY($3))
           ORDER BY id LIMIT $2""",
        after,
        limit,
        only,
    )
    return [dict(r) for r in rows]


async def update_organization(pool: asyncpg.Pool, org_id: int, name: str) -> Row:
    async with unit_of_work(pool) as uow:
        found = await uow.conn.fetchrow(
            "UPDATE organizations SET name = $2, updated_at = now() WHERE id = $1 RETURNING *", org_id, name
        )
        if found is None:
            raise NotFound(f"no organization with id {org_id}")
        row = dict(found)
        uow.emit(*events.organization("updated", row))
    return row


async def delete_organization(pool: asyncpg.Pool, org_id: int) -> Row:
    async with unit_of_work(pool) as uow:
        await _delete_associations(uow, "organization_id", org_id)
        found = await uow.conn.fetchrow("DELETE FROM organizations WHERE id = $1 RETURNING *", org_id)
        if found is None:
            raise NotFound(f"no organization with id {org_id}")
        row = dict(found)
        uow.emit(*events.organization("destroyed", row))
    return row


async def create_customer(pool: asyncpg.Pool, fields: Row) -> Row:
    async with unit_of_work(pool) as uow:
        row = dict(
            await uow.conn.fetchrow(
                "INSERT INTO customers (name, last_name, email) VALUES ($1, $2, $3) RETURNING *",
                fields["name"],
                fields["last_name"],
                fields["email"],
            )
        )
        uow.emit(*events.customer("created", row))
    return row


async def get_customer(pool: asyncpg.Pool, customer_id: int) -> Row:
    row = await pool.fetchrow("SELECT * FROM customers WHERE id = $1", customer_id)
    if row is None:
        raise NotFound(f"no customer with id {customer_id}")
    return dict(row)


async def list_customers(pool: asyncpg.Pool, after: int, limit: int) -> list[Row]:
    rows = await pool.fetch("SELECT * FROM customers WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
    return [dict(r) for r in rows]


async def update_customer(pool: asyncpg.Pool, customer_id: int, changes: Row) -> Row:
    async with unit_of_work(pool) as uow:
        found = await uow.conn.fetchrow(
            """
            UPDATE customers SET
                name = COALESCE($2, name),
                last_name = COALESCE($3, last_name),
                email = COALESCE($4, email),
                updated_at = now()
            WHERE id = $1 RETURNING *
            """,
            customer_id,
            changes.get("name"),
            changes.get("last_name"),
            changes.get("email"),
        )
        if found is None:
            raise NotFound(f"no customer with id {customer_id}")
        row = dict(found)
        uow.emit(*events.customer("updated", row))
    return row


async def delete_customer(pool: asyncpg.Pool, customer_id: int) -> Row:
    async with unit_of_work(pool) as uow:
        await _delete_associations(uow, "customer_id", customer_id)
        found = await uow.conn.fetchrow("DELETE FROM customers WHERE id = $1 RETURNING *", customer_id)
        if found is None:
            raise NotFound(f"no customer with id {customer_id}")
        row = dict(found)
        uow.emit(*events.customer("destroyed", row))
    return row


# Organization invitations (the seed's organization_associations): pending -> ready | rejected.

MOVES = {"ready": "pending", "rejected": "pending"}  # target state -> the only state it may come from


async def invite(pool: asyncpg.Pool, org_id: int, customer_id: int) -> Row:
    async with unit_of_work(pool) as uow:
        await _lock_organization(uow.conn, org_id)
        if not await uow.conn.fetchval("SELECT 1 FROM customers WHERE id = $1", customer_id):
            raise ValidationFailed.one("invite.customer_id", f"no customer with id {customer_id}")
        try:
            found = await uow.conn.fetchrow(
                """INSERT INTO organization_associations (organization_id, customer_id)
                   VALUES ($1, $2) RETURNING *""",
                org_id,
                customer_id,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"customer {customer_id} is already invited to organization {org_id}") from exc
        row = dict(found)
        uow.emit(*events.association("created", row))
    return row


async def list_associations(pool: asyncpg.Pool, org_id: int, after: int, limit: int) -> list[Row]:
    await get_organization(pool, org_id)
    rows = await pool.fetch(
        "SELECT * FROM organization_associations WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        org_id,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def get_association(pool: asyncpg.Pool, org_id: int, association_id: int) -> Row:
    row = await pool.fetchrow(
        "SELECT * FROM organization_associations WHERE id = $1 AND organization_id = $2",
        association_id,
        org_id,
    )
    if row is None:
        raise NotFound(f"no invitation {association_id} in organization {org_id}")
    return dict(row)


async def move_association(pool: asyncpg.Pool, org_id: int, association_id: int, state: str) -> Row:
    """Accept (-> ready) or reject (-> rejected) a pending invitation; any other move is a conflict."""
    async with unit_of_work(pool) as uow:
        current = await uow.conn.fetchval(
            "SELECT state FROM organization_associations WHERE id = $1 AND organization_id = $2 FOR UPDATE",
            association_id,
            org_id,
        )
        if current is None:
            raise NotFound(f"no invitation {association_id} in organization {org_id}")
        if current != MOVES[state]:
            raise Conflict(f"the invitation is {current}; only a pending invitation can become {state}")
        row = dict(
            await uow.conn.fetchrow(
                """UPDATE organization_associations SET state = $2, updated_at = now()
                   WHERE id = $1 RETURNING *""",
                association_id,
                state,
            )
        )
        uow.emit(*events.association("updated", row))
    return row


async def delete_association(pool: asyncpg.Pool, org_id: int, association_id: int) -> Row:
    async with unit_of_work(pool) as uow:
        found = await uow.conn.fetchrow(
            "DELETE FROM organization_associations WHERE id = $1 AND organization_id = $2 RETURNING *",
            association_id,
            org_id,
        )
        if found is None:
            raise NotFound(f"no invitation {association_id} in organization {org_id}")
        row = dict(found)
        uow.emit(*events.association("destroyed", row))
    return row


async def _lock_organization(conn: asyncpg.Connection, org_id: int) -> None:
    if not await conn.fetchval("SELECT 1 FROM organizations WHERE id = $1 FOR SHARE", org_id):
        raise NotFound(f"no organization with id {org_id}")


async def _delete_associations(uow: UnitOfWork, column: str, value: int) -> None:
    rows = await uow.conn.fetch(
        f"DELETE FROM organization_associations WHERE {column} = $1 RETURNING *", value
    )
    for row in rows:
        uow.emit(*events.association("destroyed", dict(row)))
