"""ksqlDB's REST API on the notifications API: `routes`, and `ksqldb_context` for create_app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from notifications.config import Config
from notifications.ksqldb.errors import ksqldb_errors
from notifications.ksqldb.queries import PushQuery
from notifications.ksqldb.views import CONFIG, PATHS, PUSH_QUERIES, routes


def ksqldb_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx step: the settings the routes read, and the push queries running."""

    async def ksqldb(app: web.Application) -> AsyncIterator[None]:
        app[CONFIG] = config
        app[PUSH_QUERIES] = []
        yield

    return ksqldb


async def end_push_queries(app: web.Application) -> None:
    """on_shutdown: end the push queries running (each answers its end of stream), or the
    server's graceful shutdown would wait its whole timeout for them (they run until LIMIT or
    their client goes)."""
    running: list[PushQuery] = app[PUSH_QUERIES] if PUSH_QUERIES in app else []
    for push in running:
        push.end()


__all__ = ["PATHS", "end_push_queries", "ksqldb_context", "ksqldb_errors", "routes"]
