"""The seed's ksqlDB statements, declared for the materializer, and what the worker does with
their output. Each declaration follows the SQL it replaces:

    CREATE TABLE organizations_table AS SELECT id, LATEST_BY_OFFSET(name) AS name ... GROUP BY id
    CREATE TABLE customers_table AS SELECT id, LATEST_BY_OFFSET(name), ..., LATEST_BY_OFFSET(action) ...
    CREATE TABLE customer_created AS SELECT ... FROM customers_table WHERE action = 'created'
    CREATE STREAM orders_created AS SELECT os.id, os.po, os.organization_id, ot.name AS organization_name,
        os.customer_id, ct.name AS customer_name, ct.last_name AS customer_last_name, ct.email AS email
      FROM orders_stream os INNER JOIN organizations_table ot ON os.organization_id = ot.id
                            INNER JOIN customers_table ct ON os.customer_id = ct.id

and, for the emails (the seed's notifications service consumed these topics):

    invoices_created:  invoices (action = 'created') joined the same way -> the invoice email
    customers_created: customers (action = 'created')                   -> the welcome email
    invitations:       organization_associations (action = 'created') joined with both tables
                                                                         -> the invitation email
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from materializer import Join, Source, Topology

Handler = Callable[[dict[str, Any], Source], Awaitable[None]]

ORGANIZATIONS_TABLE = "organizations_table"
CUSTOMERS_TABLE = "customers_table"
CUSTOMER_CREATED = "customer_created"
ORDERS_CREATED = "orders_created"
TABLES = (ORGANIZATIONS_TABLE, CUSTOMERS_TABLE, CUSTOMER_CREATED, ORDERS_CREATED)

CUSTOMER_COLUMNS = {"customer_name": "name", "customer_last_name": "last_name", "email": "email"}
# Typed as the seed's CREATE STREAM (INTEGER -> int, VARCHAR -> str); a record whose column holds
# another type is poison and goes to the dead-letter topic.
ORGANIZATION_COLUMNS = {"id": int, "name": str}
# organization_id: the customer's owner (null: none), which decides who reads the row in the API
CUSTOMER_COLUMNS_SQL = {
    "id": int,
    "name": str,
    "last_name": str,
    "email": str,
    "organization_id": int,
    "action": str,
}
ORDER_COLUMNS = {"id": int, "po": str, "organization_id": int, "customer_id": int}
INVOICE_COLUMNS = {
    "id": int,
    "order_id": int,
    "po": str,
    "organization_id": int,
    "customer_id": int,
    "date": str,
    "deliver_date": str,
    "state": str,
    "total": str,  # an exact decimal, as text
    "items": list,
    "action": str,
}
INVITATION_COLUMNS = {"id": int, "organization_id": int, "customer_id": int, "state": str, "action": str}


def _created(row: dict[str, Any]) -> bool:
    return row.get("action") == "created"


def tables(topo: Topology) -> tuple[Any, Any]:
    """organizations_table, customers_table and customer_created."""
    organizations = topo.table(ORGANIZATIONS_TABLE, topic="organizations", columns=ORGANIZATION_COLUMNS)
    customers = topo.table(CUSTOMERS_TABLE, topic="customers", columns=CUSTOMER_COLUMNS_SQL)
    topo.filtered(CUSTOMER_CREATED, customers, where=_created)
    return organizations, customers


def api_topology() -> Topology:
    """What the notifications API reads: the three tables and the enriched orders as a table."""
    topo = Topology()
    tables(topo)
    topo.table(
        ORDERS_CREATED,
        topic="orders_created",
        columns={
            **ORDER_COLUMNS,
            "organization_name": str,
            "customer_name": str,
            "customer_last_name": str,
            "email": str,
        },
    )
    return topo


def worker_topology(*, invoice: Handler, welcome: Handler, invitation: Handler) -> Topology:
    topo = Topology()
    organizations, customers = tables(topo)

    def parties() -> list[Join]:
        return [
            Join(organizations, on="organization_id", kind="inner", columns={"organization_name": "name"}),
            Join(customers, on="customer_id", kind="inner", columns=CUSTOMER_COLUMNS),
        ]

    topo.join(
        ORDERS_CREATED,
        stream=topo.stream(
            "orders_stream", topic="orders", columns=("id", "po", "organization_id", "customer_id")
        ),
        joins=parties(),
        where=None,  # as the seed's CSAS: every order event, enriched
        to_topic=ORDERS_CREATED,
    )
    topo.join(
        "invoices_created",
        stream=topo.stream("invoices_stream", topic="invoices", columns=INVOICE_COLUMNS),
        joins=parties(),
        where=_created,
        on_output=invoice,
    )
    topo.join(
        "customers_created",
        stream=topo.stream(
            "customers_stream", topic="customers", columns=("id", "name", "last_name", "email", "action")
        ),
        joins=[],
        where=_created,
        on_output=welcome,
    )
    # an invitation may be of another organization's customer: its email is the owner's business
    # (the owner's template, the owner's record), never the inviter's
    inviting = parties()[0]
    topo.join(
        "invitations",
        stream=topo.stream(
            "invitations_stream",
            topic="organization_associations",
            columns=INVITATION_COLUMNS,
        ),
        joins=[
            inviting,
            Join(
                customers,
                on="customer_id",
                kind="inner",
                columns={**CUSTOMER_COLUMNS, "customer_organization_id": "organization_id"},
            ),
        ],
        where=_created,
        on_output=invitation,
    )
    return topo
