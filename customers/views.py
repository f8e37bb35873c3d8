"""HTTP handlers of the customers service: check access, parse, call db, answer.

Access: organizations and their invitations are organization data (read: member or viewer of
that organization; write: member; create and delete an organization: admin). Customers belong to
no organization in the seed: any valid token reads them; writing them needs an administrator or
a member of some organization.
"""

from __future__ import annotations

from aiohttp import web

from customers import db
from customers.models import AssociationMove, CustomerBody, CustomerUpdateBody, InviteBody, OrganizationBody
from servicekit.app import DB_POOL
from servicekit.auth import Principal, principal
from servicekit.errors import Forbidden
from servicekit.http import json_response, page, path_id, read_model

routes = web.RouteTableDef()


def _customer_writer(who: Principal) -> None:
    if not who.admin and "member" not in who.orgs.values():
        raise Forbidden("writing customers needs an administrator or a member of an organization")


@routes.post("/organizations")
async def create_organization(request: web.Request) -> web.Response:
    principal(request).require_admin()
    body = await read_model(request, OrganizationBody)
    row = await db.create_organization(request.app[DB_POOL], body.organization.name)
    return json_response(row, status=201)


@routes.get("/organizations")
async def list_organizations(request: web.Request) -> web.Response:
    after, limit = page(request)
    rows = await db.list_organizations(request.app[DB_POOL], after, limit, principal(request).readable())
    return json_response(rows)


@routes.get("/organizations/{id}")
async def get_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    return json_response(await db.get_organization(request.app[DB_POOL], org_id))


@routes.put("/organizations/{id}")
@routes.patch("/organizations/{id}")
async def update_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    body = await read_model(request, OrganizationBody)
    return json_response(await db.update_organization(request.app[DB_POOL], org_id, body.organization.name))


@routes.delete("/organizations/{id}")
async def delete_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_admin()
    await db.delete_organization(request.app[DB_POOL], org_id)
    return web.Response(status=204)


@routes.post("/customers")
async def create_customer(request: web.Request) -> web.Response:
    _customer_writer(principal(request))
    body = await read_model(request, CustomerBody)
    row = await db.create_customer(request.app[DB_POOL], body.customer.model_dump())
    return json_response(row, status=201)


@routes.get("/customers")
async def list_customers(request: web.Request) -> web.Response:
    after, limit = page(request)
    return json_response(await db.list_customers(request.app[DB_POOL], after, limit))


@routes.get("/customers/{id}")
async def get_customer(request: web.Request) -> web.Response:
    return json_response(await db.get_customer(request.app[DB_POOL], path_id(request)))


@routes.put("/customers/{id}")
@routes.patch("/customers/{id}")
async def update_customer(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    _customer_writer(principal(request))
    body = await read_model(request, CustomerUpdateBody)
    changes = body.customer.model_dump(exclude_unset=True)
    return json_response(await db.update_customer(request.app[DB_POOL], customer_id, changes))


@routes.delete("/customers/{id}")
async def delete_customer(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    _customer_writer(principal(request))
    await db.delete_customer(request.app[DB_POOL], customer_id)
    return web.Response(status=204)


@routes.post("/organizations/{id}/organization_associations")
async def invite(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    body = await read_model(request, InviteBody)
    row = await db.invite(request.app[DB_POOL], org_id, body.invite.customer_id)
    return json_response(row, status=201)


@routes.get("/organizations/{id}/organization_associations")
async def list_associations(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    after, limit = page(request)
    return json_response(await db.list_associations(request.app[DB_POOL], org_id, after, limit))


@routes.get("/organizations/{id}/organization_associations/{association_id}")
async def get_association(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_read(org_id)
    association_id = path_id(request, "association_id")
    return json_response(await db.get_association(request.app[DB_POOL], org_id, association_id))


@routes.put("/organizations/{id}/organization_associations/{association_id}")
@routes.patch("/organizations/{id}/organization_associations/{association_id}")
async def move_association(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    association_id = path_id(request, "association_id")
    body = await read_model(request, AssociationMove)
    return json_response(await db.move_association(request.app[DB_POOL], org_id, association_id, body.state))


@routes.post("/organizations/{id}/organization_associations/{association_id}/accept")
async def accept(request: web.Request) -> web.Response:
    return await _move(request, "ready")


@routes.post("/organizations/{id}/organization_associations/{association_id}/reject")
async def reject(request: web.Request) -> web.Response:
    return await _move(request, "rejected")


async def _move(request: web.Request, state: str) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    association_id = path_id(request, "association_id")
    return json_response(await db.move_association(request.app[DB_POOL], org_id, association_id, state))


@routes.delete("/organizations/{id}/organization_associations/{association_id}")
async def delete_association(request: web.Request) -> web.Response:
    org_id = path_id(request)
    principal(request).require_write(org_id)
    await db.delete_association(request.app[DB_POOL], org_id, path_id(request, "association_id"))
    return web.Response(status=204)
