"""HTTP handlers of the customers service: check access, parse, call db, answer.

Access: organizations and their invitations are organization data (read: member or viewer of
that organization; write: member; create and delete an organization: admin). A customer belongs
to its owning organization (`organization_id`): creating, changing or deleting it needs a member
of the owner (a customer owned by no organization, as the seed's: an administrator); reading it
needs a grant for the owner or for an organization with a ready invitation of it. Accepting or
rejecting an invitation is the customer's answer: a member of the customer's owner (or an admin);
an invitation is withdrawn by a member of the inviting organization or of the customer's owner.
"""

from __future__ import annotations

from aiohttp import web

from customers import db
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
from servicekit.app import DB_POOL
from servicekit.auth import Principal, principal
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.http import json_response, path_id
from servicekit.pages import PageQuery, page_response
from servicekit.routes import Routes

routes = Routes()
ASSOCIATIONS = "/organizations/{id}/organization_associations"
ASSOCIATION = ASSOCIATIONS + "/{association_id}"


def _owner_of_new_customer(who: Principal, given: int | None) -> int | None:
    """The organization a new customer belongs to: the one given (the token must be a member of
    it), else the token's only membership; administrators may create one owned by no organization."""
    if given is not None:
        who.require_write(given)
        return given
    if who.admin:
        return None
    memberships = [org for org, role in who.orgs.items() if role == "member"]
    if not memberships:
        raise Forbidden("creating a customer needs a member of its organization (or an administrator)")
    if len(memberships) > 1:
        raise ValidationFailed.one(
            "customer.organization_id",
            "give the organization that owns the customer (you are a member of several)",
        )
    return memberships[0]


def _customer_writer(who: Principal, new_owner: int | None = None) -> db.Authorize:
    """A customer is written by a member of its owner (owned by no organization: an admin); giving
    it to another organization needs a member of that one too."""

    def authorize(row: db.Row) -> None:
        owner = row["organization_id"]
        if owner is None:
            if not who.admin:
                raise Forbidden(
                    f"customer {row['id']} belongs to no organization: only an administrator changes it"
                )
        else:
            who.require_write(owner)
        if new_owner is not None:
            who.require_write(new_owner)

    return authorize


@routes.post(
    "/organizations",
    "create an organization (admin)",
    body=OrganizationBody,
    answer=Organization,
    status=201,
    example={"organization": {"name": "SuperCompany"}},
)
async def create_organization(request: web.Request, body: OrganizationBody) -> web.Response:
    principal(request).require_admin()
    row = await db.create_organization(request.app[DB_POOL], body.organization.name)
    return json_response(row, status=201)


@routes.get("/organizations", "list organizations", query=PageQuery, answer=Organization, paged=True)
async def list_organizations(request: web.Request, query: PageQuery) -> web.Response:
    only = principal(request).readable()
    rows = await db.list_organizations(request.app[DB_POOL], query.after, query.limit, only)
    return page_response(request, rows, query.limit)


@routes.get("/organizations/{id}", "one organization", answer=Organization)
async def get_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    return json_response(await db.get_organization(request.app[DB_POOL], org_id))


@routes.put("/organizations/{id}", "rename an organization", body=OrganizationBody, answer=Organization)
@routes.patch(
    "/organizations/{id}",
    "rename an organization",
    body=OrganizationBody,
    answer=Organization,
)
async def update_organization(request: web.Request, body: OrganizationBody) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    return json_response(await db.update_organization(request.app[DB_POOL], org_id, body.organization.name))


@routes.delete("/organizations/{id}", "delete an organization (admin)", status=204, errors=(409,))
async def delete_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_admin()
    await db.delete_organization(request.app[DB_POOL], org_id)
    return web.Response(status=204)


@routes.post(
    "/customers",
    "create a customer",
    body=CustomerBody,
    answer=Customer,
    status=201,
    example={"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}},
)
async def create_customer(request: web.Request, body: CustomerBody) -> web.Response:
    who = principal(request)
    if not who.admin and "member" not in who.orgs.values():
        raise Forbidden("creating a customer needs a member of its organization (or an administrator)")
    fields = body.customer.model_dump()
    fields["organization_id"] = _owner_of_new_customer(who, fields["organization_id"])
    row = await db.create_customer(request.app[DB_POOL], fields)
    return json_response(row, status=201)


@routes.get("/customers", "list customers", query=PageQuery, answer=Customer, paged=True)
async def list_customers(request: web.Request, query: PageQuery) -> web.Response:
    only = principal(request).readable()
    rows = await db.list_customers(request.app[DB_POOL], query.after, query.limit, only)
    return page_response(request, rows, query.limit)


@routes.get("/customers/{id}", "one customer", answer=Customer)
async def get_customer(request: web.Request) -> web.Response:
    only = principal(request).readable()
    return json_response(await db.get_customer(request.app[DB_POOL], path_id(request), only))


@routes.put("/customers/{id}", "change a customer", body=CustomerUpdateBody, answer=Customer)
@routes.patch(
    "/customers/{id}",
    "change a customer",
    body=CustomerUpdateBody,
    answer=Customer,
)
async def update_customer(request: web.Request, body: CustomerUpdateBody) -> web.Response:
    customer_id = path_id(request)
    changes = body.customer.model_dump(exclude_unset=True)
    authorize = _customer_writer(principal(request), changes.get("organization_id"))
    return json_response(await db.update_customer(request.app[DB_POOL], customer_id, changes, authorize))


@routes.delete("/customers/{id}", "delete a customer", status=204, errors=(409,))
async def delete_customer(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    await db.delete_customer(request.app[DB_POOL], customer_id, _customer_writer(principal(request)))
    return web.Response(status=204)


@routes.post(
    ASSOCIATIONS,
    "invite a customer (pending)",
    body=InviteBody,
    answer=OrganizationAssociation,
    status=201,
    tag="invitations",
    errors=(409,),
)
async def invite(request: web.Request, body: InviteBody) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    row = await db.invite(request.app[DB_POOL], org_id, body.invite.customer_id)
    return json_response(row, status=201)


@routes.get(
    ASSOCIATIONS,
    "list an organization's invitations",
    query=PageQuery,
    answer=OrganizationAssociation,
    paged=True,
    tag="invitations",
)
async def list_associations(request: web.Request, query: PageQuery) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    rows = await db.list_associations(request.app[DB_POOL], org_id, query.after, query.limit)
    return page_response(request, rows, query.limit)


@routes.get(ASSOCIATION, "one invitation", answer=OrganizationAssociation, tag="invitations")
async def get_association(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    association_id = path_id(request, "association_id")
    return json_response(await db.get_association(request.app[DB_POOL], org_id, association_id))


_MOVE = "accept (state ready) or reject (state rejected) a pending invitation"


@routes.put(
    ASSOCIATION, _MOVE, body=AssociationMove, answer=OrganizationAssociation, tag="invitations", errors=(409,)
)
@routes.patch(
    ASSOCIATION,
    _MOVE,
    body=AssociationMove,
    answer=OrganizationAssociation,
    tag="invitations",
    errors=(409,),
)
async def move_association(request: web.Request, body: AssociationMove) -> web.Response:
    org_id = path_id(request)
    association_id = path_id(request, "association_id")
    authorize = _customer_writer(principal(request))
    return json_response(
        await db.move_association(request.app[DB_POOL], org_id, association_id, body.state, authorize)
    )


@routes.post(
    ASSOCIATION + "/accept",
    "pending -> ready",
    answer=OrganizationAssociation,
    tag="invitations",
    errors=(409,),
)
async def accept(request: web.Request) -> web.Response:
    return await _move(request, "ready")


@routes.post(
    ASSOCIATION + "/reject",
    "pending -> rejected",
    answer=OrganizationAssociation,
    tag="invitations",
    errors=(409,),
)
async def reject(request: web.Request) -> web.Response:
    return await _move(request, "rejected")


async def _move(request: web.Request, state: str) -> web.Response:
    org_id = path_id(request)
    association_id = path_id(request, "association_id")
    authorize = _customer_writer(principal(request))
    return json_response(
        await db.move_association(request.app[DB_POOL], org_id, association_id, state, authorize)
    )


@routes.delete(ASSOCIATION, "delete an invitation", status=204, tag="invitations")
async def delete_association(request: web.Request) -> web.Response:
    """Withdrawn by the inviting organization, or taken back by the customer's owner (who said yes)."""
    org_id = path_id(request)
    who = principal(request)

    def authorize(customer: db.Row) -> None:
        owner = customer["organization_id"]
        if not (who.can_write(org_id) or (owner is not None and who.can_write(owner))):
            raise Forbidden(
                f"an invitation of organization {org_id} is withdrawn by a member of it or of the "
                "customer's owner"
            )

    await db.delete_association(request.app[DB_POOL], org_id, path_id(request, "association_id"), authorize)
    return web.Response(status=204)
