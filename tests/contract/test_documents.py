"""Each service's OpenAPI document is built from its route declarations: every route the router
serves is in it, it is a valid OpenAPI 3.1 document, and /docs shows it."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from servicekit.openapi import document
from servicekit.routes import Routes
from tests.contract.conftest import SERVICES, create_apps

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the router serves, but the /docs page and its files."""
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in METHODS and not path.startswith("/docs"):
            out.add((route.method, path))
    return out


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


async def _spec(app: web.Application) -> dict[str, Any]:
    handler = next(
        r.handler for r in app.router.routes() if r.resource and r.resource.canonical == "/openapi.json"
    )
    response = await handler(None)  # type: ignore[arg-type]  # the handler reads nothing of it

    spec: dict[str, Any] = orjson.loads(response.body)
    return spec


@pytest.mark.parametrize("name", SERVICES)
async def test_every_served_route_is_declared_and_the_document_is_valid_openapi(
    test_env: dict[str, str], name: str
) -> None:
    app = create_apps(test_env)[name]
    spec = await _spec(app)
    assert served(app) == documented(spec)
    validate(spec)  # openapi-spec-validator: OpenAPI 3.1
    assert spec["openapi"] == "3.1.0"
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    for op in operations:
        assert op["summary"] and op["tags"]
        if op["security"]:  # with a token: refused without one, and while revocations are unread
            assert {"401", "403", "503"} <= set(op["responses"])
            assert "Retry-After" in op["responses"]["503"]["headers"]
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                assert "application/problem+json" in answer["content"]


async def test_a_route_added_without_a_declaration_is_caught(test_env: dict[str, str]) -> None:
    app = create_apps(test_env)["customers"]

    async def sneaky(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/undeclared", sneaky)
    assert served(app) - documented(await _spec(app)) == {("GET", "/undeclared")}
    # and a declaration is enough to be in both
    routes = Routes()
    routes.get("/declared", "declared once")(sneaky)
    fresh = web.Application()
    routes.add_to(fresh)
    assert served(fresh) == documented(document("x", routes)) == {("GET", "/declared")}


async def test_docs_page_serves_swagger_ui_from_the_package_and_lists_the_operations(
    running: dict[str, str],
) -> None:
    async with aiohttp.ClientSession() as session:
        for name, url in running.items():
            async with session.get(f"{url}/docs") as page:
                assert page.status == 200 and page.content_type == "text/html"
                html = await page.text()
            assert "//" not in re.sub(r"<!--.*?-->", "", html).replace("http://", "").split("<body>")[0]
            for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', html):
                async with session.get(f"{url}{asset}") as resp:
                    assert resp.status == 200, asset
                    assert len(await resp.read()) > 10_000, asset
            spec_url = re.search(r'url: "([^"]+)"', html)
            assert spec_url is not None
            async with session.get(f"{url}{spec_url.group(1)}") as resp:
                spec = await resp.json()
            assert spec["info"]["title"] == name
            assert len([op for ops in spec["paths"].values() for op in ops.values()]) >= 8
