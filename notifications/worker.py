"""`python -m notifications worker`: the materializer with the seed's tables and joins, and the
emails it triggers: one per invoice created, one welcome per customer created, one per invitation.

Each email is sent once (see notify.py for how): the materializer hands each joined record to
its handler at least once, in order per partition, and commits the record's offset only after
the handler returns; the handler records the notification in PostgreSQL, unique per source
record and per Message-ID, and hands it to a few concurrent senders (SMTP_CONCURRENCY). The
table is the senders' queue: what a crash leaves unsent is found again at start, and an SMTP
server that cannot be reached is retried with backoff while the stream goes on.

The worker also serves /health and /metrics (Prometheus) on WORKER_PORT (default 3005).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from html import escape
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from materializer import Materializer, MaterializerSettings, Source
from notifications import db, mailer, streams
from notifications.config import WorkerConfig
from notifications.db import Source as NotificationSource
from notifications.notify import Notifier, SmtpUnavailable
from servicekit.db import migrate, open_pool
from servicekit.http import json_response
from servicekit.metrics import metrics_text_of

log = logging.getLogger(__name__)

SMTP_RETRY_MAX_SECONDS = 30.0
SWEEP_SECONDS = 5.0


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):.2f}"
    except Exception:
        return str(value)


def invoice_values(row: dict[str, Any]) -> dict[str, Any]:
    """The invoice email's placeholders from the joined record."""
    items = row.get("items") or []
    lines = [
        f"{i.get('quantity')} x {i.get('description')} ({i.get('code')}) at {_money(i.get('amount'))}"
        for i in items
        if isinstance(i, dict)
    ]
    items_html = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return {
        "invoice_id": row.get("id"),
        "order_id": row.get("order_id"),
        "po": row.get("po"),
        "organization_id": row.get("organization_id"),
        "organization_name": row.get("organization_name"),
        "customer_name": row.get("customer_name"),
        "customer_last_name": row.get("customer_last_name"),
        "email": row.get("email"),
        "date": row.get("date"),
        "deliver_date": row.get("deliver_date"),
        "state": row.get("state"),
        "total": _money(row.get("total", "0")),
        "items_text": "\n".join(lines),
        "items_html": f"<ul>{items_html}</ul>" if lines else "",
    }


def _without_nul(value: Any) -> Any:
    """Text from the topics as PostgreSQL can store it (a NUL cannot be in text or jsonb). Other
    control characters are kept here: the subject replaces them (templates.py), and a header that
    still holds one makes the message uncomposable, so failed, never sent with a forged header."""
    return value.replace("\x00", "") if isinstance(value, str) else value


class Senders:
    """A few concurrent SMTP senders fed with recorded notifications. The table is the queue:
    what a crash leaves pending is found again at start; an unreachable server is retried."""

    def __init__(self, notifier: Notifier, concurrency: int, max_failures: int = 5) -> None:
        self.notifier = notifier
        self.concurrency = concurrency
        self.max_failures = max_failures
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"smtp-sender-{n}") for n in range(self.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="smtp-sweep"))

    async def _sweep(self) -> None:
        """Now and then (and at start), what a crash of ours or of another worker left unsent,
        once its lease has expired; the lease keeps a row from being sent twice at once."""
        while True:
            try:
                if self.queue.empty():
                    for row in await db.pending(self.notifier.pool, self.notifier.tenant):
                        self.queue.put_nowait(row)
            except Exception:
                log.exception("looking for unsent notifications failed; trying again later")
            await asyncio.sleep(SWEEP_SECONDS)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        connection = mailer.Connection(self.notifier.smtp)
        try:
            await self._deliver_forever(connection)
        finally:
            await connection.close()

    async def _deliver_forever(self, connection: mailer.Connection) -> None:
        delay = 0.5
        while True:
            row = await self.queue.get()
            try:
                await self.notifier.deliver(row, connection)
                delay = 0.5
            except SmtpUnavailable as exc:
                log.warning("SMTP unavailable (%s); notification %s retried in %.1fs", exc, row["id"], delay)
                await db.release(self.notifier.pool, row["id"])
                await asyncio.sleep(delay)
                delay = min(delay * 2, SMTP_RETRY_MAX_SECONDS)
                self.queue.put_nowait({**row, "leased": False})  # lease again before the next try
            except Exception as exc:
                status = await self._count_failure(row, exc)
                if status in ("failed", "gone"):
                    continue
                log.exception("notification %s could not be sent; retried in %.1fs", row["id"], delay)
                await asyncio.sleep(delay)
                self.queue.put_nowait({**row, "leased": False})

    async def _count_failure(self, row: dict[str, Any], exc: Exception) -> str:
        """Count a failure that was not the SMTP server's doing: bounded, then `failed` for good."""
        error = f"{type(exc).__name__}: {exc}"
        try:
            status = await db.record_failure(self.notifier.pool, row["id"], error, self.max_failures)
        except Exception:
            log.exception("could not count the failure of notification %s", row["id"])
            return "unknown"
        if status == "failed":
            self.notifier.failed += 1
            log.error("notification %s failed %d times; given up: %s", row["id"], self.max_failures, error)
        return status


class Emails:
    """The handlers the materializer calls with each joined record: record the notification
    (unique per source and Message-ID) and hand it to the senders. The record's offset is
    committed after this returns, so what is committed is in the table."""

    def __init__(self, notifier: Notifier, senders: Senders) -> None:
        self.notifier = notifier
        self.senders = senders

    async def _send(
        self, source: Source, *, template: str, to: str | None, org: Any, values: dict[str, Any], key: str
    ) -> None:
        if not to:
            log.warning(
                "%s at %s:%s:%s has no recipient; not sent",
                template,
                source.topic,
                source.partition,
                source.offset,
            )
            return
        organization_id = (
            int(org) if isinstance(org, int) or (isinstance(org, str) and org.isdecimal()) else None
        )
        row = await self.notifier.record(
            NotificationSource(source.topic, source.partition, source.offset),
            template=template,
            to=_without_nul(to),
            organization_id=organization_id,
            values={k: _without_nul(v) for k, v in values.items()},
            message_key=key,
            check_template=False,
            lease=True,
        )
        if row["status"] not in ("sent", "failed"):
            self.senders.queue.put_nowait(row)

    async def invoice(self, row: dict[str, Any], source: Source) -> None:
        await self._send(
            source,
            template="invoice_created",
            to=row.get("email"),
            org=row.get("organization_id"),
            values=invoice_values(row),
            key=f"invoice-{row.get('id')}",
        )

    async def welcome(self, row: dict[str, Any], source: Source) -> None:
        values = {k: row.get(k) for k in ("id", "name", "last_name", "email")}
        await self._send(
            source,
            template="customer_created",
            to=row.get("email"),
            org=None,
            values=values,
            key=f"customer-{row.get('id')}",
        )

    async def invitation(self, row: dict[str, Any], source: Source) -> None:
        values = {
            "association_id": row.get("id"),
            "organization_id": row.get("organization_id"),
            "organization_name": row.get("organization_name"),
            "customer_name": row.get("customer_name"),
            "customer_last_name": row.get("customer_last_name"),
            "email": row.get("email"),
        }
        await self._send(
            source,
            template="invitation_created",
            to=row.get("email"),
            org=row.get("organization_id"),
            values=values,
            key=f"invitation-{row.get('id')}",
        )


class WorkerCollector(Collector):
    """Materializer and email figures, read at scrape time."""

    def __init__(self, materializer: Materializer, notifier: Notifier) -> None:
        self.materializer = materializer
        self.notifier = notifier
        self.lag = 0  # refreshed by `refresh()` before each scrape (asking Kafka is async)

    async def refresh(self) -> None:
        self.lag = await _lag(self.materializer)

    def collect(self) -> Iterator[Any]:
        m = self.materializer
        for name, help_text, value in (
            ("materializer_records_in", "records consumed", getattr(m, "records_in", 0)),
            ("materializer_records_out", "joined records emitted", getattr(m, "records_out", 0)),
            (
                "materializer_dead_letters",
                "records sent to the dead-letter topic",
                getattr(m, "dead_letters", 0),
            ),
            ("emails_sent", "emails accepted by the SMTP server", self.notifier.sent),
            ("emails_failed", "emails refused by the SMTP server", self.notifier.failed),
        ):
            yield CounterMetricFamily(name, help_text, value=float(value))
        lag = GaugeMetricFamily("consumer_lag", "records behind the end of the stream topics")
        lag.add_metric([], float(self.lag))
        yield lag


async def _lag(materializer: Materializer) -> int:
    """Records behind the end of the stream topics (0 while Kafka cannot be asked)."""
    try:
        return sum((await materializer.lag()).values())
    except Exception:
        return 0


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
        materializer = Materializer(
            topology,
            MaterializerSettings(
                kafka=config.kafka,
                state_dir=config.worker.state_dir / "worker",
                group_id=config.worker.group_id,
                join_wait_seconds=config.worker.join_wait_seconds,
                dead_letter_topic=config.worker.dead_letter_topic,
            ),
        )
        await materializer.start()
        stack.push_async_callback(materializer.stop)
        yield materializer, notifier


def worker_app(materializer: Materializer, notifier: Notifier) -> web.Application:
    registry = CollectorRegistry()
    collector = WorkerCollector(materializer, notifier)
    registry.register(collector)

    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok", "consumer_lag": await _lag(materializer)})

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

    asyncio.run(main())
