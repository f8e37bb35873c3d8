"""create_app: the notifications API (port 3003)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from materializer import Materializer
from notifications import ksqldb, streams
from notifications.config import Config, materializer_settings
from notifications.notify import Notifier
from notifications.views import MATERIALIZER, NOTIFIER, routes
from servicekit.app import DB_POOL, service_app


def create_app(config: Config) -> web.Application:
    app = service_app(
        config,
        title="notifications",
        topics=[],
        routes=routes + ksqldb.routes,
        answer_middlewares=[ksqldb.ksqldb_errors(ksqldb.PATHS)],
        api_keys=True,
    )

    async def notifier(app: web.Application) -> AsyncIterator[None]:
        app[NOTIFIER] = Notifier(app[DB_POOL], config.smtp, tenant=config.worker.tenant)
        yield

    async def tables(app: web.Application) -> AsyncIterator[None]:
        # Kafka may be down: the materializer's start must not fail the API, it catches up later.
        materializer = app[MATERIALIZER] = Materializer(
            streams.api_topology(), materializer_settings(config, "api")
        )
        await materializer.start()
        yield
        await materializer.stop()

    app.cleanup_ctx.append(ksqldb.ksqldb_context(config))
    app.on_shutdown.append(ksqldb.end_push_queries)
    app.cleanup_ctx.append(notifier)
    app.cleanup_ctx.append(tables)
    return app
