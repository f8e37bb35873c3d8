"""The frame every service shares: middlewares, database pool and migrations, the outbox relay,
Kafka topics, /health and /openapi.json. Each service's `create_app` adds its routes to it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from kafka_integration import (
    RELAY,
    KafkaIntegrationError,
    OutboxRelay,
    TopicSpec,
    check_credentials,
    deliver_messages,
    ensure_topics,
    relay_context,
)
from servicekit.apikeys import API_KEYS_TOPIC, api_keys_context
from servicekit.auth import BASIC_AUTH, REVOCATIONS, REVOCATIONS_TOPIC, auth_middleware, revocations_context
from servicekit.db import connect, migrate, open_pool
from servicekit.docs import add_docs
from servicekit.http import (
    MAX_BODY_BYTES,
    error_middleware,
    json_response,
    request_id_middleware,
)
from servicekit.metrics import METRICS, ServiceMetrics, metrics_middleware, metrics_text
from servicekit.openapi import document
from servicekit.routes import Routes
from servicekit.settings import HttpSettings, ServiceConfig

log = logging.getLogger(__name__)

DB_POOL = web.AppKey("servicekit.db_pool", asyncpg.Pool)


def service_app(
    config: ServiceConfig,
    *,
    title: str,
    topics: Iterable[TopicSpec],
    routes: Routes,
    middlewares: Sequence[Middleware] = (),
    answer_middlewares: Sequence[Middleware] = (),
    api_keys: bool = False,
) -> web.Application:
    """The service's application, its routes and its OpenAPI document built from `routes`'
    declarations, on the settings every service has (`config`): its schema (migrated with the
    migrations named `title`), Kafka and the key that checks tokens. Every route but /health,
    /metrics, /openapi.json and /docs (and routes declared `public=True`) needs a valid,
    unrevoked token; with `api_keys`, an API key as HTTP Basic credentials as well
    (servicekit.apikeys)."""
    http, db, kafka, auth = config.http, config.db, config.kafka, config.auth
    topic_specs = [*topics, REVOCATIONS_TOPIC, *([API_KEYS_TOPIC] if api_keys else [])]
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            request_id_middleware,
            metrics_middleware,
            *answer_middlewares,  # they see every answer, the error middleware's problems included
            error_middleware,
            auth_middleware(auth),
            *middlewares,
            deliver_messages(http.delivery_timeout, kafka.max_event_bytes),
        ],
    )

    async def database(app: web.Application) -> AsyncIterator[None]:
        async with open_pool(db) as pool:
            applied = await migrate(pool, ["kafka_integration", title], db.schema)
            if applied:
                log.info("%s: applied migrations %s", title, applied)
            app[DB_POOL] = pool
            yield

    async def kafka_topics(app: web.Application) -> AsyncIterator[None]:
        # Kafka may be down at start: the outbox keeps events until it is back, so a failure
        # to create topics here is logged, not fatal (the relay publishes once Kafka answers).
        # A broker that refuses our credentials is fatal: waiting would not change its mind.
        await check_credentials(kafka)
        try:
            await ensure_topics(kafka, topic_specs)
        except Exception as exc:
            log.warning("%s: could not create topics now (%r); Kafka will auto-create them", title, exc)
        yield

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(kafka_topics)
    app.cleanup_ctx.append(revocations_context(kafka))
    if api_keys:
        app.cleanup_ctx.append(api_keys_context(kafka))
    metrics = app[METRICS] = ServiceMetrics(title)
    app.cleanup_ctx.append(
        relay_context(
            lambda app: OutboxRelay(
                kafka,
                app[DB_POOL],
                schema=db.schema,
                connect=lambda: connect(db),
                on_published=metrics.events_published.inc,
                on_dead_lettered=metrics.events_dead_lettered.inc,
                on_refused=metrics.outbox_refused.inc,
            )
        )
    )

    common = Routes()

    @common.get(
        "/health", "database, outbox backlog, revocations read (503 until then)", public=True, also=(503,)
    )
    async def health(request: web.Request) -> web.Response:
        async with request.app[DB_POOL].acquire() as conn:
            await conn.fetchval("SELECT 1")
        relay = request.app[RELAY]
        body = {
            "status": "ok",
            "database": "ok",
            "outbox_backlog": await relay.backlog(),
            "relay_is_publisher": relay.is_leader,
            "outbox_refused": relay.refused,  # batches refused by Kafka's ACLs (an error, logged)
        }
        revocations = request.app.get(REVOCATIONS)
        if revocations is not None:
            body["revocations"] = "read" if revocations.ready else "not read yet"
            if not revocations.ready:  # not ready: requests with a token get 503 (fail closed)
                return json_response({**body, "status": "starting"}, status=503, headers={"Retry-After": "1"})
        keys = request.app.get(BASIC_AUTH)
        if keys is not None:
            body["api_keys"] = "read" if keys.ready else "not read yet"
            if not keys.ready:
                return json_response({**body, "status": "starting"}, status=503, headers={"Retry-After": "1"})
        return json_response(body)

    @common.get("/openapi.json", "this document", public=True)
    async def openapi(request: web.Request) -> web.Response:
        return json_response(spec)

    @common.get("/metrics", "Prometheus metrics", public=True)
    async def prometheus(request: web.Request) -> web.Response:
        metrics.outbox_backlog.set(await request.app[RELAY].backlog())
        return metrics_text(metrics)

    spec = document(title, [*common, *routes], basic=api_keys)
    common.add_to(app)
    routes.add_to(app)
    add_docs(app, title)
    return app


def run(app: web.Application, http: HttpSettings) -> None:
    """Run a service until SIGINT/SIGTERM, logging to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with exit_on_refusal():
        web.run_app(app, host=http.host, port=http.port, print=None, access_log=None)


@contextlib.contextmanager
def exit_on_refusal() -> Iterator[None]:
    """A Kafka refusal at start (wrong password, unknown CA) ends the process with its message
    and exit status 2, not a traceback or a retry loop."""
    try:
        yield
    except KafkaIntegrationError as exc:
        log.critical("%s", exc)
        raise SystemExit(2) from exc
