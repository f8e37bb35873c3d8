"""All the customers service's SQL. Each write declares its events in its transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from customers import events
from kafka_integration import unit_of_work
from servicekit.errors import NotFound

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


async def list_organizations(pool: asyncpg.Pool, after: int, limit: int) -> list[Row]:
    rows = await pool.fetch("SELECT * FROM organizations WHERE id > $1 ORDER BY id LIMIT $2", after, limit)
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
        found = await uow.conn.fetchrow("DELETE FROM customers WHERE id = $1 RETURNING *", customer_id)
        if found is None:
            raise NotFound(f"no customer with id {customer_id}")
        row = dict(found)
        uow.emit(*events.customer("destroyed", row))
    return row
