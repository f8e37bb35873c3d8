"""create_app: the customers service's application."""

from __future__ import annotations

from aiohttp import web

from customers import events
from customers.config import Config
from customers.models import (
    AssociationMove,
    Customer,
    CustomerBody,
    CustomerUpdateBody,
    InviteBody,
    Organization,
    OrganizationAssociation,
    OrganizationBody,
)
from customers.views import routes
from servicekit.app import service_app
from servicekit.openapi import Operation

OPERATIONS = [
    Operation("POST", "/organizations", "create an organization", OrganizationBody, Organization, 201),
    Operation("GET", "/organizations", "list organizations (?after=&limit=)", None, Organization),
    Operation("GET", "/organizations/{id}", "one organization", None, Organization),
    Operation("PUT", "/organizations/{id}", "rename an organization", OrganizationBody, Organization),
    Operation("DELETE", "/organizations/{id}", "delete an organization", None, None, 204),
    Operation("POST", "/customers", "create a customer", CustomerBody, Customer, 201),
    Operation("GET", "/customers", "list customers (?after=&limit=)", None, Customer),
    Operation("GET", "/customers/{id}", "one customer", None, Customer),
    Operation("PUT", "/customers/{id}", "change a customer", CustomerUpdateBody, Customer),
    Operation("DELETE", "/customers/{id}", "delete a customer", None, None, 204),
    Operation(
        "POST",
        "/organizations/{id}/organization_associations",
        "invite a customer (pending)",
        InviteBody,
        OrganizationAssociation,
        201,
    ),
    Operation(
        "GET",
        "/organizations/{id}/organization_associations",
        "list invitations",
        None,
        OrganizationAssociation,
    ),
    Operation(
        "GET",
        "/organizations/{id}/organization_associations/{association_id}",
        "one invitation",
        None,
        OrganizationAssociation,
    ),
    Operation(
        "PATCH",
        "/organizations/{id}/organization_associations/{association_id}",
        "accept (state ready) or reject (state rejected) a pending invitation",
        AssociationMove,
        OrganizationAssociation,
    ),
    Operation(
        "POST",
        "/organizations/{id}/organization_associations/{association_id}/accept",
        "pending -> ready",
        None,
        OrganizationAssociation,
    ),
    Operation(
        "POST",
        "/organizations/{id}/organization_associations/{association_id}/reject",
        "pending -> rejected",
        None,
        OrganizationAssociation,
    ),
    Operation(
        "DELETE",
        "/organizations/{id}/organization_associations/{association_id}",
        "delete an invitation",
        None,
        None,
        204,
    ),
]


def create_app(config: Config) -> web.Application:
    return service_app(
        title="customers",
        http=config.http,
        db=config.db,
        kafka=config.kafka,
        migrations=["customers"],
        topics=events.TOPICS,
        operations=OPERATIONS,
        routes=routes,
        auth=config.auth,
    )
