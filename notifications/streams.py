"""The notifications' streams and tables, declared in ksqlDB's SQL (`streams.sql`), and what the
worker does with their output: Python only attaches the email handlers to named output streams.

`streams.sql` holds the seed's four statements as the seed wrote them (organizations_table,
customers_table, customer_created, orders_created), then ours: customer_owners (a customer's
owning organization), and the streams the worker emails from:

    invoices_created:  invoices (action = 'created') joined with both tables -> the invoice email
    customers_created: customers (action = 'created')                       -> the welcome email
    invitations:       organization_associations (action = 'created') joined with both tables and
                       the customer's owner                                  -> the invitation email

`python -m materializer check notifications/streams.sql` prints what it declares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from materializer import Materializer, Source, Topology
from materializer.sql import Catalog, parse_sql

Handler = Callable[[dict[str, Any], Source], Awaitable[None]]

SQL = Path(__file__).with_name("streams.sql")

ORGANIZATIONS_TABLE = "organizations_table"
CUSTOMERS_TABLE = "customers_table"
CUSTOMER_CREATED = "customer_created"
ORDERS_CREATED = "orders_created"
CUSTOMER_OWNERS = "customer_owners"
TABLES = (ORGANIZATIONS_TABLE, CUSTOMERS_TABLE, CUSTOMER_CREATED, ORDERS_CREATED)
# The output streams the worker emails from; they write no topic (the email is their output).
INVOICES_CREATED = "invoices_created"
CUSTOMERS_CREATED = "customers_created"
INVITATIONS = "invitations"
EMAILED = (INVOICES_CREATED, CUSTOMERS_CREATED, INVITATIONS)


@cache
def catalog() -> Catalog:
    """streams.sql, read and checked once."""
    return parse_sql(SQL.read_text(encoding="utf-8"))


def api_topology() -> Topology:
    """What the notifications API reads: the tables, and the enriched orders as a table over the
    topic orders_created writes (its rows by the order's key)."""
    topo = catalog().topology(streams=False)
    orders = catalog().joined(ORDERS_CREATED)
    topo.table(ORDERS_CREATED, topic=orders.topic, columns=orders.output_columns())
    return topo


def worker_topology(*, invoice: Handler, welcome: Handler, invitation: Handler) -> Topology:
    handlers = dict(zip(EMAILED, (invoice, welcome, invitation), strict=True))
    return catalog().topology(on_output=handlers, topicless=handlers)


def shown_row(materializer: Materializer, table: str, key: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the API shows it: a customer's (customers_table, customer_created) with its owner's
    organization_id from customer_owners (null: none), which decides who may read it."""
    out = dict(row)
    if table in (CUSTOMERS_TABLE, CUSTOMER_CREATED):
        owner = materializer.table(CUSTOMER_OWNERS).get(key)
        out["organization_id"] = None if owner is None else owner.get("organization_id")
    return out
