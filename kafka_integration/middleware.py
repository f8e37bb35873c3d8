"""The aiohttp side: the relay's lifecycle and the DeliverMessages middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from kafka_integration.outbox import collect_pending
from kafka_integration.relay import OutboxRelay

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RELAY = web.AppKey("kafka_integration.relay", OutboxRelay)


def deliver_messages(timeout: float, max_event_bytes: int | None = None) -> Middleware:
    """Middleware (the gem's `DeliverMessages`): after the handler's transactions committed,
    wait up to `timeout` seconds until Kafka has this request's events, then answer. On timeout
    the answer still goes out (the write is committed, its events are safe in the outbox) with
    `X-Events-Delivered: false`. The request's units of work refuse events over `max_event_bytes`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        async with collect_pending(max_event_bytes) as pending:
            response = await handler(request)
        if pending:
            delivered = await request.app[RELAY].wait_delivered(pending, timeout)
            if not delivered:
                log.warning(
                    "%d events of %s %s still in the outbox", len(pending), request.method, request.path
                )
            response.headers["X-Events-Delivered"] = "true" if delivered else "false"
        return response

    return middleware


def relay_context(
    make_relay: Callable[[web.Application], OutboxRelay],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx step that starts the outbox relay and stops it on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = make_relay(app)
        await relay.start()
        app[RELAY] = relay
        yield
        await relay.stop()

    return ctx
