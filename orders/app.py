"""create_app: the orders service's application."""

from __future__ import annotations

from aiohttp import web

from orders import events
from orders.config import Config
from orders.parties import parties_context
from orders.views import routes
from servicekit.app import service_app


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="orders", topics=[*events.TOPICS, *events.KNOWN_TOPICS], routes=routes)
    app.cleanup_ctx.append(parties_context(config.kafka, config.parties))
    return app
