"""`python -m notifications worker`: the materializer with the seed's tables and joins, and the
emails it triggers: one per invoice created, one welcome per customer created, one per invitation.

Each email is sent once (see notify.py for how): the materializer hands each joined record to
its handler at least once, in order per partition, and commits the record's offset only after
the handler returns; the handler records the notification in PostgreSQL, unique per source
record and per Message-ID, and hands it to a few concurrent senders (SMTP_CONCURRENCY). The
table is the senders' queue: what a crash leaves unsent is found again at start, and an SMTP
server that cannot be reached is retried with backoff while the stream goes on.

The worker also serves /health and /metrics (Prometheus) on WORKER_PORT (default 3005); /health
says `degraded` (503) when Kafka cannot be asked the lag.

This module is the wiring: the handlers are in emails.py, the senders in senders.py, the
figures in worker_metrics.py.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry

from materializer import Materializer
from notifications import streams
from notifications.config import WorkerConfig, materializer_settings
from notifications.emails import Emails
from notifications.notify import Notifier
from notifications.senders import Senders
from notifications.worker_metrics import WorkerCollector, stream_lag
from servicekit.app import exit_on_refusal
from servicekit.db import migrate, open_pool
from servicekit.http import json_response
from servicekit.metrics import metrics_text_of

log = logging.getLogger(__name__)


@asynccontextmanager
async def running_worker(config: WorkerConfig) -> AsyncIterator[tuple[Materializer, Notifier]]:
    """Database, notifier and materializer, opened in order and closed in reverse."""
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(open_pool(config.db))
        await migrate(pool, ["notifications"], config.db.schema)
        notifier = Notifier(pool, config.smtp, tenant=config.worker.tenant, template_cache_seconds=5.0)
        senders = Senders(notifier, config.worker.smtp_concurrency, config.worker.max_failures)
        await senders.start()
        stack.push_async_callback(senders.stop)
        emails = Emails(notifier, senders)
        topology = streams.worker_topology(
            invoice=emails.invoice, welcome=emails.welcome, invitation=emails.invitation
        )
        materializer = Materializer(topology, materializer_settings(config, "worker"))
        await materializer.start()
        stack.push_async_callback(materializer.stop)
        yield materializer, notifier


def worker_app(materializer: Materializer, notifier: Notifier) -> web.Application:
    registry = CollectorRegistry()
    collector = WorkerCollector(materializer, notifier)
    registry.register(collector)

    async def health(request: web.Request) -> web.Response:
        lag = await stream_lag(materializer)
        if not lag.known:  # the lag is unknown, not 0: say so (503, so a probe notices)
            return json_response({"status": "degraded", **lag.as_dict()}, status=503)
        return json_response({"status": "ok", **lag.as_dict()})

    async def metrics(request: web.Request) -> web.Response:
        await collector.refresh()
        return metrics_text_of(registry)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_worker(config: WorkerConfig, stop: asyncio.Event) -> None:
    async with running_worker(config) as (materializer, notifier):
        runner = web.AppRunner(worker_app(materializer, notifier), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.worker.host, config.worker.port)
        await site.start()
        where = f"{config.worker.host}:{config.worker.port}"
        log.info("notifications worker running; health and metrics on %s", where)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def run_worker(config: WorkerConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_worker(config, stop)

    with exit_on_refusal():
        asyncio.run(main())
