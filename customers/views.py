"""HTTP handlers of the customers service: parse, call db, answer."""

from __future__ import annotations

from aiohttp import web

from customers import db
from customers.models import CustomerBody, CustomerUpdateBody, OrganizationBody
from servicekit.app import DB_POOL
from servicekit.http import json_response, page, path_id, read_model

routes = web.RouteTableDef()


@routes.post("/organizations")
async def create_organization(request: web.Request) -> web.Response:
    body = await read_model(request, OrganizationBody)
    row = await db.create_organization(request.app[DB_POOL], body.organization.name)
    return json_response(row, status=201)


@routes.get("/organizations")
async def list_organizations(request: web.Request) -> web.Response:
    after, limit = page(request)
    return json_response(await db.list_organizations(request.app[DB_POOL], after, limit))


@routes.get("/organizations/{id}")
async def get_organization(request: web.Request) -> web.Response:
    return json_response(await db.get_organization(request.app[DB_POOL], path_id(request)))


@routes.put("/organizations/{id}")
@routes.patch("/organizations/{id}")
async def update_organization(request: web.Request) -> web.Response:
    org_id = path_id(request)
    body = await read_model(request, OrganizationBody)
    return json_response(await db.update_organization(request.app[DB_POOL], org_id, body.organization.name))


@routes.delete("/organizations/{id}")
async def delete_organization(request: web.Request) -> web.Response:
    await db.delete_organization(request.app[DB_POOL], path_id(request))
    return web.Response(status=204)


@routes.post("/customers")
async def create_customer(request: web.Request) -> web.Response:
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
    body = await read_model(request, CustomerUpdateBody)
    changes = body.customer.model_dump(exclude_unset=True)
    return json_response(await db.update_customer(request.app[DB_POOL], customer_id, changes))


@routes.delete("/customers/{id}")
async def delete_customer(request: web.Request) -> web.Response:
    await db.delete_customer(request.app[DB_POOL], path_id(request))
    return web.Response(status=204)
