"""The floor of POST /customers: a minimal aiohttp + asyncpg handler doing the customers
service's INSERT and nothing else (no token, no validation, no outbox, no middleware), so
bench.customers_post can say what fraction of the bare rate the service keeps.

    DATABASE_URL=... DATABASE_SCHEMA=... PORT=... python -m bench.customers_floor

Same pool size as the service (DATABASE_POOL_MAX, servicekit's default), same schema and
table (the service has migrated it), same JSON body; answers 201 and the row."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import orjson
from aiohttp import web

from servicekit.db import DatabaseSettings

POOL = web.AppKey("pool", asyncpg.Pool)


async def create(request: web.Request) -> web.Response:
    fields = orjson.loads(await request.read())["customer"]
    row = await request.app[POOL].fetchrow(
        """INSERT INTO customers (name, last_name, email, organization_id)
           VALUES ($1, $2, $3, $4) RETURNING *""",
        fields["name"],
        fields["last_name"],
        fields["email"],
        fields.get("organization_id"),
    )
    body = orjson.dumps({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(row).items()})
    return web.Response(status=201, body=body, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(settings: DatabaseSettings) -> web.Application:
    async def pool(app: web.Application) -> AsyncIterator[None]:
        async with asyncpg.create_pool(
            settings.url.reveal(),
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            server_settings={"search_path": settings.schema},
        ) as opened:
            app[POOL] = opened
            yield

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_post("/customers", create)
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    web.run_app(
        create_app(DatabaseSettings.from_env(os.environ, "customers")),
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        access_log=None,
        print=None,
    )
