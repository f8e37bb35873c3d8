"""All the orders service's SQL. Each write declares its events in its transaction; an order
and the invoice it issues are written, and their events published, together.

Writes that change an existing record take `authorize(row)`: it is called with the record as
locked in the transaction, so the access check sees the organization the record really has.

Every write of items (issuing an invoice, adding or changing an item) happens while its order
or invoice is locked (just inserted, or `SELECT ... FOR UPDATE`) and ends with `_check_items`:
at most MAX_ITEMS items totalling at most MAX_TOTAL, else the transaction rolls back. Two
parallel adds to a record at MAX_ITEMS - 1 are serialized by the lock: one passes, the other
sees the cap.
Creating an order checks the same rules on its body before it writes: its rows are all new,
and the body holds the items as they will be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from kafka_integration import Event, UnitOfWork, unit_of_work
from orders import events
from orders.models import MAX_ITEMS, MAX_TOTAL, ItemFields, OrderFields
from servicekit.errors import Conflict, NotFound, ValidationFailed

Row = dict[str, Any]
Authorize = Callable[[Row], None]
ITEM_COLUMNS = "id, quantity, description, code, amount, created_at, updated_at"


@dataclass(frozen=True)
class Kind:
    """Orders and invoices differ in little: their table, their item type and their events."""

    table: str
    itemable: str
    noun: str
    emit: Callable[[str, Row], list[Event]]


ORDER = Kind("orders", "Order", "order", events.order)
INVOICE = Kind("invoices", "Invoice", "invoice", events.invoice)


async def _items(conn: asyncpg.Connection, kind: Kind, parent_id: int) -> list[Row]:
    rows = await conn.fetch(
        f"SELECT {ITEM_COLUMNS} FROM items WHERE itemable_type = $1 AND itemable_id = $2 ORDER BY id",
        kind.itemable,
        parent_id,
    )
    return [dict(r) for r in rows]


async def _full(conn: asyncpg.Connection, kind: Kind, row: asyncpg.Record | Row) -> Row:
    """The record as the API and the events show it: its row, its items, and for an order the
    id of its invoice."""
    out = dict(row)
    out["items"] = await _items(conn, kind, out["id"])
    if kind is ORDER:
        out["invoice_id"] = await conn.fetchval("SELECT id FROM invoices WHERE order_id = $1", out["id"])
    return out


async def _insert_items(
    conn: asyncpg.Connection,
    kind: Kind,
    parent_id: int,
    items: Sequence[Row],
    field: str,
    fresh: bool = False,
) -> list[Row]:
    """Insert items of a record this transaction holds locked; then check the record's items.
    `fresh`: the record was inserted in this transaction, so these are all its items and the
    check needs no query (the rows returned hold the amounts as stored, rounded to the column)."""
    if not items:
        return []
    rows = await conn.fetch(
        f"""INSERT INTO items (itemable_type, itemable_id, quantity, description, code, amount)
            SELECT $1, $2, t.quantity, t.description, t.code, t.amount
            FROM unnest($3::integer[], $4::text[], $5::text[], $6::numeric[])
                 WITH ORDINALITY AS t(quantity, description, code, amount, n)
            ORDER BY t.n
            RETURNING {ITEM_COLUMNS}""",
        kind.itemable,
        parent_id,
        [i["quantity"] for i in items],
        [i["description"] for i in items],
        [i["code"] for i in items],
        [i["amount"] for i in items],
    )
    inserted = [dict(r) for r in rows]
    if fresh:
        _item_rules(kind, parent_id, len(inserted), _total(inserted), field)
    else:
        await _check_items(conn, kind, parent_id, field)
    return inserted


def _total(items: Sequence[Row]) -> Decimal:
    """sum(quantity x amount) of stored items, exact (amounts have two decimals), as PostgreSQL sums them."""
    return sum((Decimal(i["quantity"]) * Decimal(i["amount"]) for i in items), Decimal("0.00"))


def _item_rules(kind: Kind, parent_id: int, count: int, total: Decimal, field: str) -> None:
    """ValidationFailed naming `field` (the transaction then rolls back) if a record would have
    too many items or they would total too much."""
    if count > MAX_ITEMS:
        raise ValidationFailed.one(
            field, f"{kind.noun} {parent_id} would have {count} items; it may have at most {MAX_ITEMS}"
        )
    if total > MAX_TOTAL:
        raise ValidationFailed.one(
            field, f"the items of {kind.noun} {parent_id} would total {total}; the most is {MAX_TOTAL}"
        )


async def _check_items(conn: asyncpg.Connection, kind: Kind, parent_id: int, field: str) -> None:
    """The item rules of a record, after a write to its items, on what the table holds."""
    count, total = await conn.fetchrow(
        """SELECT count(*), COALESCE(sum(quantity * amount), 0) FROM items
           WHERE itemable_type = $1 AND itemable_id = $2""",
        kind.itemable,
        parent_id,
    )
    _item_rules(kind, parent_id, count, total, field)


async def _refresh_total(conn: asyncpg.Connection, invoice_id: int) -> None:
    await conn.execute(
        """UPDATE invoices SET total = COALESCE((SELECT sum(quantity * amount) FROM items
                                                 WHERE itemable_type = 'Invoice' AND itemable_id = $1), 0)
           WHERE id = $1""",
        invoice_id,
    )


async def _issue_invoice(uow: UnitOfWork, order: Row, field: str) -> Row:
    """The invoice of an order (whose row and items this transaction holds): its fields and a
    copy of its items; total = sum(quantity x amount). Written in two statements (the invoice
    with its total, then the copied items), as the order's items are at hand."""
    try:
        row = await uow.conn.fetchrow(
            """INSERT INTO invoices
                   (order_id, po, organization_id, customer_id, date, deliver_date, state, total)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
            order["id"],
            order["po"],
            order["organization_id"],
            order["customer_id"],
            order["date"],
            order["deliver_date"],
            order["state"],
            _total(order["items"]),
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"order {order['id']} already has an invoice") from exc
    invoice = dict(row)
    invoice["items"] = await _insert_items(
        uow.conn, INVOICE, invoice["id"], order["items"], field, fresh=True
    )
    uow.emit(*INVOICE.emit("created", invoice))
    return invoice


# The order and its invoice in one statement, with the items of both when there are any (an
# empty items INSERT still costs PostgreSQL its planning and execution: a tenth more per order).
# The items are inserted in one INSERT, the order's first and then the invoice's, each in the
# body's order, so their ids come out as when they were written one after the other. Each row
# comes back as its table's composite type: the columns of `RETURNING *`, in table order.
_ORDER_AND_INVOICE = """
    WITH o AS (
        INSERT INTO orders (po, organization_id, customer_id, date, deliver_date, state)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING orders
    ), i AS (
        INSERT INTO invoices (order_id, po, organization_id, customer_id, date, deliver_date, state, total)
        SELECT (o.orders).id, (o.orders).po, (o.orders).organization_id, (o.orders).customer_id,
               (o.orders).date, (o.orders).deliver_date, (o.orders).state, $7::numeric
        FROM o
        RETURNING invoices
    )"""
_CREATE_ORDER = _ORDER_AND_INVOICE + " SELECT o.orders, i.invoices FROM o, i"
_CREATE_ORDER_WITH_ITEMS = (
    _ORDER_AND_INVOICE
    + """, it AS (
        INSERT INTO items (itemable_type, itemable_id, quantity, description, code, amount)
        SELECT p.itemable_type, p.itemable_id, t.quantity, t.description, t.code, t.amount
        FROM (SELECT 1, 'Order', (o.orders).id FROM o
              UNION ALL SELECT 2, 'Invoice', (i.invoices).id FROM i) AS p(n, itemable_type, itemable_id),
             unnest($8::integer[], $9::text[], $10::text[], $11::numeric[])
                 WITH ORDINALITY AS t(quantity, description, code, amount, n)
        ORDER BY p.n, t.n
        RETURNING items
    )
    SELECT o.orders, i.invoices, ARRAY(SELECT it.items FROM it ORDER BY (it.items).id) AS items
    FROM o, i"""
)
CENT = Decimal("0.01")


def _item_row(stored: asyncpg.Record) -> Row:
    """An item as the API and the events show it (its `items` row less the parent's columns)."""
    return {
        "id": stored["id"],
        "quantity": stored["quantity"],
        "description": stored["description"],
        "code": stored["code"],
        "amount": stored["amount"],
        "created_at": stored["created_at"],
        "updated_at": stored["updated_at"],
    }


async def create_order(pool: asyncpg.Pool, fields: OrderFields) -> Row:
    """The order, its items and its invoice in one transaction of four round trips to
    PostgreSQL (BEGIN, one statement for the rows, the outbox, COMMIT), with items or without.
    The item rules are checked first, on the amounts as the column stores them (validated
    amounts have at most two decimals, so storing them rounds nothing)."""
    items = fields.items
    amounts = [i.amount.quantize(CENT) for i in items]
    total = _total([{"quantity": i.quantity, "amount": a} for i, a in zip(items, amounts, strict=True)])
    async with unit_of_work(pool) as uow:
        if len(items) > MAX_ITEMS or total > MAX_TOTAL:
            # named by the id the order would have had, as when the rules ran on its inserted rows
            ident = await uow.conn.fetchval("SELECT nextval(pg_get_serial_sequence('orders', 'id'))")
            _item_rules(ORDER, ident, len(items), total, "order.items")
        order_fields = (
            fields.po,
            fields.organization_id,
            fields.customer_id,
            fields.date,
            fields.deliver_date,
            fields.state,
            total,
        )
        kinds: dict[str, list[Row]] = {"Order": [], "Invoice": []}
        if items:
            found = await uow.conn.fetchrow(
                _CREATE_ORDER_WITH_ITEMS,
                *order_fields,
                [i.quantity for i in items],
                [i.description for i in items],
                [i.code for i in items],
                amounts,
            )
            for stored in found["items"]:
                kinds[stored["itemable_type"]].append(_item_row(stored))
        else:
            found = await uow.conn.fetchrow(_CREATE_ORDER, *order_fields)
        invoice = dict(found["invoices"])
        invoice["items"] = kinds["Invoice"]
        order = dict(found["orders"])
        order["items"] = kinds["Order"]
        order["invoice_id"] = invoice["id"]
        uow.emit(*INVOICE.emit("created", invoice))
        uow.emit(*ORDER.emit("created", order))
    return order


async def create_invoice(pool: asyncpg.Pool, order_id: int, authorize: Authorize) -> Row:
    async with unit_of_work(pool) as uow:
        found = await uow.conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
        if found is None:
            raise ValidationFailed.one("invoice.order_id", f"no order with id {order_id}")
        authorize(dict(found))
        invoice = await _issue_invoice(uow, await _full(uow.conn, ORDER, found), "invoice.order_id")
    return invoice


async def get(pool: asyncpg.Pool, kind: Kind, ident: int) -> Row:
    async with pool.acquire() as conn:
        found = await conn.fetchrow(f"SELECT * FROM {kind.table} WHERE id = $1", ident)
        if found is None:
            raise NotFound(f"no {kind.noun} with id {ident}")
        return await _full(conn, kind, found)


async def listing(
    pool: asyncpg.Pool, kind: Kind, after: int, limit: int, only: list[int] | None
) -> list[Row]:
    """Records by id; `only` restricts them to those organizations (None: all)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"""SELECT * FROM {kind.table}
                WHERE id > $1 AND ($3::bigint[] IS NULL OR organization_id = ANY($3))
                ORDER BY id LIMIT $2""",
            after,
            limit,
            only,
        )
        return [await _full(conn, kind, r) for r in rows]


async def _locked(uow: UnitOfWork, kind: Kind, ident: int, authorize: Authorize) -> Row:
    found = await uow.conn.fetchrow(f"SELECT * FROM {kind.table} WHERE id = $1 FOR UPDATE", ident)
    if found is None:
        raise NotFound(f"no {kind.noun} with id {ident}")
    row = dict(found)
    authorize(row)
    return row


async def update(pool: asyncpg.Pool, kind: Kind, ident: int, changes: Row, authorize: Authorize) -> Row:
    async with unit_of_work(pool) as uow:
        current = await _locked(uow, kind, ident, authorize)
        merged = {**current, **changes}
        if merged["deliver_date"] <= merged["date"]:
            raise ValidationFailed.one(f"{kind.noun}.deliver_date", "deliver_date must be after date")
        columns = list(changes)
        assignments = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, start=2))
        found = await uow.conn.fetchrow(
            f"UPDATE {kind.table} SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
            ident,
            *(changes[c] for c in columns),
        )
        row = await _full(uow.conn, kind, found)
        uow.emit(*kind.emit("updated", row))
    return row


async def delete(pool: asyncpg.Pool, kind: Kind, ident: int, authorize: Authorize) -> None:
    """Delete a record and its items; deleting an order deletes its invoice too (as the seed's
    `has_one :invoice, dependent: :destroy`)."""
    async with unit_of_work(pool) as uow:
        current = await _full(uow.conn, kind, await _locked(uow, kind, ident, authorize))
        if kind is ORDER and current["invoice_id"] is not None:
            invoice = await _full(
                uow.conn,
                INVOICE,
                await uow.conn.fetchrow("SELECT * FROM invoices WHERE id = $1", current["invoice_id"]),
            )
            await _delete_row(uow, INVOICE, invoice)
        await _delete_row(uow, kind, current)


async def _delete_row(uow: UnitOfWork, kind: Kind, row: Row) -> None:
    await uow.conn.execute(
        "DELETE FROM items WHERE itemable_type = $1 AND itemable_id = $2", kind.itemable, row["id"]
    )
    await uow.conn.execute(f"DELETE FROM {kind.table} WHERE id = $1", row["id"])
    uow.emit(*kind.emit("destroyed", row))


async def items(pool: asyncpg.Pool, kind: Kind, parent_id: int) -> tuple[Row, list[Row]]:
    parent = await get(pool, kind, parent_id)
    return parent, parent["items"]


async def _changed_parent(uow: UnitOfWork, kind: Kind, parent_id: int) -> Row:
    if kind is INVOICE:
        await _refresh_total(uow.conn, parent_id)
    found = await uow.conn.fetchrow(
        f"UPDATE {kind.table} SET updated_at = now() WHERE id = $1 RETURNING *", parent_id
    )
    parent = await _full(uow.conn, kind, found)
    uow.emit(*kind.emit("updated", parent))
    return parent


async def add_item(
    pool: asyncpg.Pool, kind: Kind, parent_id: int, item: ItemFields, authorize: Authorize
) -> Row:
    async with unit_of_work(pool) as uow:
        await _locked(uow, kind, parent_id, authorize)
        (added,) = await _insert_items(uow.conn, kind, parent_id, [item.model_dump()], "item")
        await _changed_parent(uow, kind, parent_id)
    return added


async def update_item(
    pool: asyncpg.Pool, kind: Kind, parent_id: int, item_id: int, changes: Row, authorize: Authorize
) -> Row:
    async with unit_of_work(pool) as uow:
        await _locked(uow, kind, parent_id, authorize)
        columns = list(changes)
        assignments = ", ".join(f"{c} = ${n}" for n, c in enumerate(columns, start=4))
        found = await uow.conn.fetchrow(
            f"""UPDATE items SET {assignments}, updated_at = now()
                WHERE id = $1 AND itemable_type = $2 AND itemable_id = $3 RETURNING {ITEM_COLUMNS}""",
            item_id,
            kind.itemable,
            parent_id,
            *(changes[c] for c in columns),
        )
        if found is None:
            raise NotFound(f"no item {item_id} in {kind.noun} {parent_id}")
        await _check_items(uow.conn, kind, parent_id, "item")
        await _changed_parent(uow, kind, parent_id)
    return dict(found)


async def delete_item(
    pool: asyncpg.Pool, kind: Kind, parent_id: int, item_id: int, authorize: Authorize
) -> None:
    async with unit_of_work(pool) as uow:
        await _locked(uow, kind, parent_id, authorize)
        deleted = await uow.conn.fetchval(
            "DELETE FROM items WHERE id = $1 AND itemable_type = $2 AND itemable_id = $3 RETURNING id",
            item_id,
            kind.itemable,
            parent_id,
        )
        if deleted is None:
            raise NotFound(f"no item {item_id} in {kind.noun} {parent_id}")
        await _changed_parent(uow, kind, parent_id)
