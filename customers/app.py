"""create_app: the customers service's application."""

from __future__ import annotations

from aiohttp import web

from customers import events
from customers.config import Config
from customers.views import routes
from servicekit.app import service_app


def create_app(config: Config) -> web.Application:
    return service_app(config, title="customers", topics=events.TOPICS, routes=routes)
