"""create_app: the orders service's application."""

from __future__ import annotations

from aiohttp import web

from orders import events
from orders.config import Config
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
from orders.parties import parties_context
from orders.views import routes
from servicekit.app import service_app
from servicekit.openapi import Operation

OPERATIONS = [
    Operation(
        "POST", "/orders", "place an order (flat or {order: ...}); issues its invoice", OrderBody, Order, 201
    ),
    Operation("GET", "/orders", "list orders (?after=&limit=)", None, Order),
    Operation("GET", "/orders/{id}", "one order", None, Order),
    Operation("PUT", "/orders/{id}", "change an order", OrderUpdateBody, Order),
    Operation("DELETE", "/orders/{id}", "delete an order and its invoice", None, None, 204),
    Operation("POST", "/invoices", "issue the invoice of an order", InvoiceBody, Invoice, 201),
    Operation("GET", "/invoices", "list invoices (?after=&limit=)", None, Invoice),
    Operation("GET", "/invoices/{id}", "one invoice", None, Invoice),
    Operation("PUT", "/invoices/{id}", "change an invoice", InvoiceUpdateBody, Invoice),
    Operation("DELETE", "/invoices/{id}", "delete an invoice", None, None, 204),
]
for _parent in ("orders", "invoices"):
    OPERATIONS += [
        Operation("GET", f"/{_parent}/{{id}}/items", "its line items", None, Item),
        Operation("POST", f"/{_parent}/{{id}}/items", "add a line item", ItemBody, Item, 201),
        Operation("PUT", f"/{_parent}/{{id}}/items/{{item_id}}", "change a line item", ItemUpdateBody, Item),
        Operation("DELETE", f"/{_parent}/{{id}}/items/{{item_id}}", "remove a line item", None, None, 204),
    ]


def create_app(config: Config) -> web.Application:
    app = service_app(
        title="orders",
        http=config.http,
        db=config.db,
        kafka=config.kafka,
        migrations=["orders"],
        topics=[*events.TOPICS, *events.KNOWN_TOPICS],
        operations=OPERATIONS,
        routes=routes,
        auth=config.auth,
    )
    app.cleanup_ctx.append(parties_context(config.kafka, config.parties))
    return app
