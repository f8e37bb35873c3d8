"""The console's application: `create_app(config)`. Resources (the database pools, an HTTP client
for the security service and the workers, the flow's sampler) are opened and closed in one
cleanup_ctx; sign-in and CSRF are checked by one middleware, the console's errors turned into
pages by another."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiokafka.errors import KafkaError

from console import session
from console.config import Config
from console.db import console_pool
from console.errors import ConsoleError, InvalidInput, NotAllowed, NotFound, Unavailable
from console.flow import Flow
from console.keys import CONFIG, FLOW, HTTP, NOTIFICATIONS_POOL, POOL, SECRET
from console.views import render_page, routes
from servicekit.auth import revocations_context
from servicekit.db import open_pool
from servicekit.http import Handler

STATIC = Path(__file__).with_name("static")
PUBLIC = ("/login", "/health", "/static/")
STATUS = {InvalidInput: 422, NotFound: 404, NotAllowed: 409, Unavailable: 503}
# Every response: nothing fetched from elsewhere (a message's image or stylesheet, shown in the
# sandboxed frame that inherits this, would tell its sender who looked and when), no framing by
# another site (a click there would be the operator's), forms posted only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=session.MAX_FORM_BYTES, middlewares=[errors_middleware, auth_middleware]
    )
    app[CONFIG] = config
    app[SECRET] = secrets.token_bytes(32)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.cleanup_ctx.append(revocations_context(config.kafka))  # a token signed out is refused here too
    app.cleanup_ctx.append(_resources)
    app.router.add_routes(routes)
    app.router.add_static("/static/", STATIC)
    app.on_response_prepare.append(_security_headers)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    ops = config.ops
    notifications_db = replace(ops.db, schema=ops.schemas["notifications"], pool_min=1, pool_max=4)
    async with (
        console_pool(ops) as pool,
        open_pool(notifications_db) as npool,
        aiohttp.ClientSession() as http,
    ):
        app[POOL], app[NOTIFICATIONS_POOL], app[HTTP] = pool, npool, http
        flow = app[FLOW] = Flow(pool, ops, http, config.worker_urls)
        task = asyncio.create_task(flow.run(), name="console-flow")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConsoleError as exc:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        return _problem(request, status, str(exc))
    except session.SignInRefused as exc:
        return _problem(request, exc.status, str(exc), template="login.html")
    except KafkaError as exc:  # the broker down or unreachable: say so, not a 500
        return _problem(request, 503, f"Kafka cannot be asked now ({type(exc).__name__}): try again shortly")


def _problem(request: web.Request, status: int, message: str, template: str = "problem.html") -> web.Response:
    response = render_page(template, request, {"problem": message}, status=status)
    session.set_cookies(request, response)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Signed in as an administrator for everything but sign-in, /health and the static files;
    every POST carries the CSRF field."""
    if request.method == "POST":
        form = await request.post()
        if not session.csrf_ok(request, form):
            return _problem(
                request, 403, "the form's CSRF token is missing or wrong: reload the page and try again"
            )
    if not request.path.startswith(PUBLIC):
        who = session.signed_in(request)
        if who is None:
            if request.method == "GET" and request.path != "/events":
                raise web.HTTPSeeOther("/login")
            return _problem(request, 401, "sign in first (as an administrator)")
        request[session.PRINCIPAL] = who
    response = await handler(request)
    session.set_cookies(request, response)
    return response
