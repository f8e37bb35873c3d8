"""All the customers service's SQL. Each write declares its events in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from customers import events
from kafka_integration import RowEventWrite, UnitOfWork, unit_of_work
from servicekit.errors import Conflict, Forbidden, NotFound, ValidationFailed

Row = dict[str, Any]
Authorize = Callable[[Row], None]  # called with the record as locked in the transaction; raises to refuse


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
        try:
            found = await uow.conn.fetchrow("DELETE FROM organizations WHERE id = $1 RETURNING *", org_id)
        except asyncpg.ForeignKeyViolationError as exc:
            raise Conflict(
                f"organization {org_id} owns customers; delete them or give them another owner first"
            ) from exc
        if found is None:
            raise NotFound(f"no organization with id {org_id}")
        row = dict(found)
        uow.emit(*events.organization("destroyed", row))
    return row


# A new customer and its `customer_created` event in one statement (kafka_integration.row_event):
# one round trip instead of four. The foreign key proves the owner exists (and holds it against
# deletion until the commit), so no SELECT of the organization first.
_CUSTOMER_CREATED = RowEventWrite(
    """INSERT INTO customers (name, last_name, email, organization_id)
       VALUES ($1, $2, $3, $4) RETURNING *""",
    topic=events.CUSTOMERS,
    entity="customer",
    action="created",
    columns=events.CUSTOMER_COLUMNS,
)


async def create_customer(pool: asyncpg.Pool, fields: Row) -> Row:
    """A new customer owned by `fields["organization_id"]` (None: by no organization)."""
    owner = fields.get("organization_id")
    args = [fields["name"], fields["last_name"], fields["email"], owner]
    try:
        row = await _CUSTOMER_CREATED.run(pool, args, known={**fields, "organization_id": owner})
    except asyncpg.ForeignKeyViolationError as exc:
        raise ValidationFailed.one("customer.organization_id", f"no organization with id {owner}") from exc
    assert row is not None  # an INSERT ... VALUES writes its row
    return row


# Who may read a customer: its owner, and the organizations with a ready invitation of it.
_READABLE = """($2::bigint[] IS NULL OR organization_id = ANY($2) OR EXISTS (
    SELECT 1 FROM organization_associations a
    WHERE a.customer_id = customers.id AND a.state = 'ready' AND a.organization_id = ANY($2)))"""


async def get_customer(pool: asyncpg.Pool, customer_id: int, only: list[int] | None = None) -> Row:
    """The customer if one of the organizations `only` owns it or has a ready invitation of it
    (None: any); Forbidden if it exists but none does."""
    row = await pool.fetchrow(f"SELECT * FROM customers WHERE id = $1 AND {_READABLE}", customer_id, only)
    if row is not None:
        return dict(row)
    if await pool.fetchval("SELECT 1 FROM customers WHERE id = $1", customer_id):
        raise Forbidden(f"no access to customer {customer_id}")
    raise NotFound(f"no customer with id {customer_id}")


async def list_customers(
    pool: asyncpg.Pool, after: int, limit: int, only: list[int] | None = None
) -> list[Row]:
    """Customers by id; `only` restricts them to those these organizations may read (None: all)."""
    rows = await pool.fetch(
        f"SELECT * FROM customers WHERE id > $1 AND {_READABLE} ORDER BY id LIMIT $3", after, only, limit
    )
    return [dict(r) for r in rows]


async def update_customer(pool: asyncpg.Pool, customer_id: int, changes: Row, authorize: Authorize) -> Row:
    async with unit_of_work(pool) as uow:
        authorize(await _locked_customer(uow.conn, customer_id))
        owner = changes.get("organization_id")
        if owner is not None and not await _organization_exists(uow.conn, owner):
            raise ValidationFailed.one("customer.organization_id", f"no organization with id {owner}")
        row = dict(
            await uow.conn.fetchrow(
                """
                UPDATE customers SET
                    name = COALESCE($2, name),
                    last_name = COALESCE($3, last_name),
                    email = COALESCE($4, email),
                    organization_id = COALESCE($5, organization_id),
                    updated_at = now()
                WHERE id = $1 RETURNING *
                """,
                customer_id,
                changes.get("name"),
                changes.get("last_name"),
                changes.get("email"),
                owner,
            )
        )
        uow.emit(*events.customer("updated", row))
    return row


async def delete_customer(pool: asyncpg.Pool, customer_id: int, authorize: Authorize) -> Row:
    async with unit_of_work(pool) as uow:
        authorize(await _locked_customer(uow.conn, customer_id))
        await _delete_associations(uow, "customer_id", customer_id)
        row = dict(await uow.conn.fetchrow("DELETE FROM customers WHERE id = $1 RETURNING *", customer_id))
        uow.emit(*events.customer("destroyed", row))
    return row


async def _locked_customer(conn: asyncpg.Connection, customer_id: int) -> Row:
    found = await conn.fetchrow("SELECT * FROM customers WHERE id = $1 FOR UPDATE", customer_id)
    if found is None:
        raise NotFound(f"no customer with id {customer_id}")
    return dict(found)


async def _organization_exists(conn: asyncpg.Connection, org_id: int) -> bool:
    """True if the organization exists; it is then locked against deletion until the commit."""
    return bool(await conn.fetchval("SELECT 1 FROM organizations WHERE id = $1 FOR SHARE", org_id))


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


async def move_association(
    pool: asyncpg.Pool, org_id: int, association_id: int, state: str, authorize: Authorize
) -> Row:
    """Accept (-> ready) or reject (-> rejected) a pending invitation; any other move is a conflict.
    It is the invited customer's answer: `authorize` is called with the customer (as locked)."""
    async with unit_of_work(pool) as uow:
        current = await uow.conn.fetchval(
            "SELECT state FROM organization_associations WHERE id = $1 AND organization_id = $2 FOR UPDATE",
            association_id,
            org_id,
        )
        if current is None:
            raise NotFound(f"no invitation {association_id} in organization {org_id}")
        authorize(
            dict(
                await uow.conn.fetchrow(
                    """SELECT c.* FROM customers c JOIN organization_associations a ON a.customer_id = c.id
                       WHERE a.id = $1 FOR SHARE OF c""",
                    association_id,
                )
            )
        )
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


async def delete_association(
    pool: asyncpg.Pool, org_id: int, association_id: int, authorize: Authorize
) -> Row:
    """`authorize` is called with the invited customer (as locked)."""
    async with unit_of_work(pool) as uow:
        customer = await uow.conn.fetchrow(
            """SELECT c.* FROM customers c JOIN organization_associations a ON a.customer_id = c.id
               WHERE a.id = $1 AND a.organization_id = $2 FOR SHARE OF c""",
            association_id,
            org_id,
        )
        if customer is None:
            raise NotFound(f"no invitation {association_id} in organization {org_id}")
        authorize(dict(customer))
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
