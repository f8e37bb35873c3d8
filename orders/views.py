"""HTTP handlers of the orders service: check access, parse, call db, answer.

Access: an order or invoice is its organization's data. Reading needs a grant (member or
viewer) for that organization, writing needs member; lists show only the organizations the
token may read; administrators see everything. A member orders (or moves an order) only for a
customer the order's organization owns or has a ready invitation of (orders/parties.py).
"""

from __future__ import annotations

from aiohttp import web

from orders import db
from orders.db import INVOICE, ORDER, Kind, Row
from orders.models import (
    Invoice,
    InvoiceBody,
    InvoiceUpdateBody,
    Item,
    ItemBody,
    ItemUpdateBody,
    Order,
    OrderBody,
    OrderUpdateBody,
)
from orders.parties import PARTIES
from servicekit.app import DB_POOL
from servicekit.auth import Principal, principal
from servicekit.errors import Conflict
from servicekit.http import json_response, path_id
from servicekit.pages import PageQuery, page_response
from servicekit.routes import Routes

routes = Routes()
KINDS = {"orders": ORDER, "invoices": INVOICE}


def _kind(request: web.Request) -> Kind:
    """Orders or invoices: the first segment of the path (both have the same routes)."""
    return KINDS[request.path.split("/")[1]]


def _writer(who: Principal) -> db.Authorize:
    def authorize(row: Row) -> None:
        who.require_write(row["organization_id"])

    return authorize


@routes.post(
    "/orders",
    "place an order (flat, as the seed's curl, or {order: ...}); issues its invoice",
    body=OrderBody,
    answer=Order,
    status=201,
    example={
        "po": "po002",
        "organization_id": 13,
        "customer_id": 10,
        "date": "2022-05-07T07:50:03-00:00",
        "deliver_date": "2022-05-07T07:53:03-00:00",
        "state": "pending",
    },
)
async def create_order(request: web.Request, body: OrderBody) -> web.Response:
    who = principal(request)
    order = body.order
    who.require_write(order.organization_id)
    parties = request.app[PARTIES]
    await parties.check("order.", order.organization_id, order.customer_id)
    await parties.check_customer_access(who, "order.", order.organization_id, order.customer_id)
    return json_response(await db.create_order(request.app[DB_POOL], order), status=201)


@routes.post("/invoices", "issue the invoice of an order", body=InvoiceBody, answer=Invoice, status=201)
async def create_invoice(request: web.Request, body: InvoiceBody) -> web.Response:
    row = await db.create_invoice(request.app[DB_POOL], body.invoice.order_id, _writer(principal(request)))
    return json_response(row, status=201)


@routes.get("/orders", "list orders", query=PageQuery, answer=Order, paged=True)
@routes.get("/invoices", "list invoices", query=PageQuery, answer=Invoice, paged=True)
async def listing(request: web.Request, query: PageQuery) -> web.Response:
    only = principal(request).readable()
    rows = await db.listing(request.app[DB_POOL], _kind(request), query.after, query.limit, only)
    return page_response(request, rows, query.limit)


@routes.get("/orders/{id}", "one order", answer=Order)
@routes.get("/invoices/{id}", "one invoice", answer=Invoice)
async def get_one(request: web.Request) -> web.Response:
    row = await db.get(request.app[DB_POOL], _kind(request), path_id(request))
    principal(request).require_read(row["organization_id"])
    return json_response(row)


@routes.put("/orders/{id}", "change an order", body=OrderUpdateBody, answer=Order)
@routes.patch("/orders/{id}", "change an order", body=OrderUpdateBody, answer=Order)
async def update_order(request: web.Request, body: OrderUpdateBody) -> web.Response:
    ident = path_id(request)
    who = principal(request)
    changes = body.order.model_dump(exclude_unset=True)
    if "organization_id" in changes:
        who.require_write(changes["organization_id"])
    if changes.keys() & {"organization_id", "customer_id"}:
        await request.app[PARTIES].check("order.", changes.get("organization_id"), changes.get("customer_id"))
    authorize = _writer(who)
    if not who.admin and changes.keys() & {"organization_id", "customer_id"}:
        authorize = await _parties_writer(request, who, ident, changes)
    return json_response(await db.update(request.app[DB_POOL], ORDER, ident, changes, authorize))


async def _parties_writer(request: web.Request, who: Principal, ident: int, changes: Row) -> db.Authorize:
    """A member changing an order's organization or customer: the pair it ends with must be one
    the member may order for; checked now, and the order must still have, when locked, the
    parties that check assumed."""
    current = await db.get(request.app[DB_POOL], ORDER, ident)
    who.require_write(current["organization_id"])
    org = int(changes.get("organization_id") or current["organization_id"])
    customer = int(changes.get("customer_id") or current["customer_id"])
    await request.app[PARTIES].check_customer_access(who, "order.", org, customer)
    write = _writer(who)

    def authorize(row: Row) -> None:
        write(row)
        if (row["organization_id"], row["customer_id"]) != (
            current["organization_id"],
            current["customer_id"],
        ):
            raise Conflict(f"order {ident} changed while this change was checked; try again")

    return authorize


@routes.put("/invoices/{id}", "change an invoice", body=InvoiceUpdateBody, answer=Invoice)
@routes.patch("/invoices/{id}", "change an invoice", body=InvoiceUpdateBody, answer=Invoice)
async def update_invoice(request: web.Request, body: InvoiceUpdateBody) -> web.Response:
    ident = path_id(request)
    changes = body.invoice.model_dump(exclude_unset=True)
    return json_response(
        await db.update(request.app[DB_POOL], INVOICE, ident, changes, _writer(principal(request)))
    )


@routes.delete("/orders/{id}", "delete an order and its invoice", status=204)
@routes.delete("/invoices/{id}", "delete an invoice", status=204)
async def delete(request: web.Request) -> web.Response:
    await db.delete(request.app[DB_POOL], _kind(request), path_id(request), _writer(principal(request)))
    return web.Response(status=204)


@routes.get("/orders/{id}/items", "an order's line items", answer=Item, paged=True)
@routes.get("/invoices/{id}/items", "an invoice's line items", answer=Item, paged=True)
async def list_items(request: web.Request) -> web.Response:
    parent, items = await db.items(request.app[DB_POOL], _kind(request), path_id(request))
    principal(request).require_read(parent["organization_id"])
    return page_response(request, items, 0)  # at most MAX_ITEMS: one page


@routes.post("/orders/{id}/items", "add a line item", body=ItemBody, answer=Item, status=201)
@routes.post("/invoices/{id}/items", "add a line item", body=ItemBody, answer=Item, status=201)
async def add_item(request: web.Request, body: ItemBody) -> web.Response:
    parent_id = path_id(request)
    item = body.item
    row = await db.add_item(
        request.app[DB_POOL], _kind(request), parent_id, item, _writer(principal(request))
    )
    return json_response(row, status=201)


@routes.put("/orders/{id}/items/{item_id}", "change a line item", body=ItemUpdateBody, answer=Item)
@routes.patch("/orders/{id}/items/{item_id}", "change a line item", body=ItemUpdateBody, answer=Item)
@routes.put("/invoices/{id}/items/{item_id}", "change a line item", body=ItemUpdateBody, answer=Item)
@routes.patch("/invoices/{id}/items/{item_id}", "change a line item", body=ItemUpdateBody, answer=Item)
async def update_item(request: web.Request, body: ItemUpdateBody) -> web.Response:
    parent_id, item_id = path_id(request), path_id(request, "item_id")
    changes = body.item.model_dump(exclude_unset=True)
    row = await db.update_item(
        request.app[DB_POOL], _kind(request), parent_id, item_id, changes, _writer(principal(request))
    )
    return json_response(row)


@routes.delete("/orders/{id}/items/{item_id}", "remove a line item", status=204)
@routes.delete("/invoices/{id}/items/{item_id}", "remove a line item", status=204)
async def delete_item(request: web.Request) -> web.Response:
    parent_id, item_id = path_id(request), path_id(request, "item_id")
    await db.delete_item(
        request.app[DB_POOL], _kind(request), parent_id, item_id, _writer(principal(request))
    )
    return web.Response(status=204)
