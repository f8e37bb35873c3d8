"""The flow from a write to an email, sampled every few seconds and kept for 15 minutes:

    organizations/customers/orders -> outbox -> Kafka -> materializer -> notification -> SMTP

Each sample holds, per step: the outbox backlog and dead letters per service (PostgreSQL), the
end offset of each topic and partition (records in), the worker group's committed offset (records
out) and lag per partition (Kafka), the worker's counters (records in/out, dead letters, joins
waiting for a row, emails sent/failed, from each worker's /metrics), and notifications per status.
Rates are the difference of two samples over their interval. A figure that cannot be read is None
(and the step shows the error), never 0.

The sampler's Kafka clients (an admin client for topics, one for the group's offsets, a consumer
without a group for end offsets) stay open between samples; after a failure they are closed and
opened again at the next sample. A page draws the charts of the whole history; the live stream
then sends one point per chart and sample (worked out once, however many are watching).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from markupsafe import Markup

from console import charts, lag, notices, records
from console.config import SERVICES, OperationsSettings
from kafka_integration import KafkaSettings, TopicMetadata

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
HISTORY_SECONDS = 15 * 60
STEP_TIMEOUT = 5.0
WORKER_FIGURES = {
    "materializer_records_in_total": "records_in",
    "materializer_records_out_total": "records_out",
    "materializer_dead_letters_total": "dead_letters",
    "materializer_parked": "parked",
    "emails_sent_total": "emails_sent",
    "emails_failed_total": "emails_failed",
}
WORKER_LEVELS = ("parked",)  # a level, charted as it is; the other worker figures are counters
KAFKA_STEPS = ("topics", "lag")


@dataclass
class Sample:
    at: float
    outbox: dict[str, dict[str, int | None]] = field(default_factory=dict)  # service -> backlog, dead
    ends: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> end offset
    partitions: list[dict[str, Any]] = field(default_factory=list)  # group lag rows
    worker: dict[str, float] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def topics(self) -> dict[str, int]:
        """topic -> sum of its partitions' end offsets (records in); read once the sample is taken."""
        out: dict[str, int] = {}
        for (topic, _), end in self.ends.items():
            out[topic] = out.get(topic, 0) + end
        return out

    def lag(self, topic: str | None = None, partition: int | None = None) -> int | None:
        """The group's lag: in all, on one topic, or on one of its partitions."""
        if "lag" in self.errors:
            return None
        return sum(
            int(p["lag"])
            for p in self.partitions
            if (topic is None or p["topic"] == topic) and (partition is None or p["partition"] == partition)
        )

    def committed(self, topic: str, partition: int | None = None) -> int | None:
        """Records out: the group's committed offsets on a topic (or one partition); None when
        unknown or never committed."""
        if "lag" in self.errors:
            return None
        found = [
            max(0, p["committed"])
            for p in self.partitions
            if p["topic"] == topic and (partition is None or p["partition"] == partition)
        ]
        return sum(found) if found else None

    def value(self, name: str) -> float | None:
        """One figure of this sample by its series name (see `Flow.series`); None when unknown."""
        return self.figures.get(name)

    @functools.cached_property
    def figures(self) -> dict[str, float | None]:
        """Every figure of this sample by series name, worked out once (a chart of 15 minutes
        reads 450 samples): `topic:<t>`, `part:<t>/<p>`, `out:<t>`, `part_out:<t>/<p>`, `lag:`,
        `lag:<t>`, `lag:<t>/<p>`, `outbox:<service>`, `outbox_dead:<service>`, `worker:<key>`,
        `notifications:<status>`."""
        out: dict[str, float | None] = {}
        kafka_known, lag_known = "topics" not in self.errors, "lag" not in self.errors
        for topic, end in self.topics.items():
            out[f"topic:{topic}"] = float(end) if kafka_known else None
        for (topic, partition), end in self.ends.items():
            out[f"part:{topic}/{partition}"] = float(end) if kafka_known else None
        lagged: dict[str, float] = {}
        for p in self.partitions:
            where = f"{p['topic']}/{p['partition']}"
            out[f"part_out:{where}"] = float(max(0, p["committed"])) if lag_known else None
            out[f"lag:{where}"] = float(p["lag"]) if lag_known else None
            out[f"out:{p['topic']}"] = (out.get(f"out:{p['topic']}") or 0.0) + max(0, p["committed"])
            lagged[p["topic"]] = lagged.get(p["topic"], 0.0) + p["lag"]
        for topic, total in lagged.items():
            out[f"lag:{topic}"] = total if lag_known else None
            out[f"out:{topic}"] = out[f"out:{topic}"] if lag_known else None
        out["lag:"] = float(sum(lagged.values())) if lag_known else None
        for service, v in self.outbox.items():
            for kind, count in (("outbox", v["backlog"]), ("outbox_dead", v["dead"])):
                known = "outbox" not in self.errors and count is not None
                out[f"{kind}:{service}"] = float(count) if known and count is not None else None
        for key, figure in self.worker.items():
            out[f"worker:{key}"] = figure if "worker" not in self.errors else None
        for status, n in self.notifications.items():
            out[f"notifications:{status}"] = float(n) if "notifications" not in self.errors else None
        return out


class KafkaClients:
    """The sampler's Kafka clients, opened at the first sample and kept open between samples;
    `close` (after a failure, and at shutdown) makes the next `get` open new ones."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.opened = 0  # how many times they were opened (a test's and an operator's figure)
        self._stack: contextlib.AsyncExitStack | None = None
        self._clients: tuple[TopicMetadata, AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def get(self) -> tuple[TopicMetadata, AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is not None:
            return self._clients
        stack = contextlib.AsyncExitStack()
        try:
            metadata = await stack.enter_async_context(TopicMetadata(self.kafka))
            admin = AIOKafkaAdminClient(**self.kafka.client_kwargs())
            stack.push_async_callback(admin.close)
            await admin.start()
            consumer = await stack.enter_async_context(records.reader(self.kafka))
        except BaseException:
            with contextlib.suppress(Exception):
                await stack.aclose()
            raise
        self._stack, self._clients = stack, (metadata, admin, consumer)
        self.opened += 1
        return self._clients

    async def close(self) -> None:
        stack, self._stack, self._clients = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()


class Flow:
    """The samples of the last 15 minutes, and a task that takes one every SAMPLE_SECONDS."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        ops: OperationsSettings,
        session: aiohttp.ClientSession,
        workers: Iterable[str],
    ) -> None:
        self.pool = pool
        self.ops = ops
        self.session = session
        self.workers = tuple(workers)
        self.samples: collections.deque[Sample] = collections.deque(
            maxlen=int(HISTORY_SECONDS / SAMPLE_SECONDS)
        )
        self.changed = asyncio.Condition()
        self.origin = float(int(time.time()))  # the charts' time 0
        self.kafka = KafkaClients(ops.kafka)
        self._points: tuple[float, str] | None = None  # the latest sample's time, its points as JSON

    async def run(self) -> None:
        try:
            while True:
                try:
                    sample = await self.sample()
                except Exception:
                    log.exception("sampling the flow failed; trying again")
                else:
                    self.samples.append(sample)
                    async with self.changed:
                        self.changed.notify_all()
                await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            await self.kafka.close()

    async def sample(self) -> Sample:
        out = Sample(at=time.time())
        await asyncio.gather(
            self._step(out, "outbox", self._outbox(out)),
            self._kafka(out),
            self._step(out, "worker", self._worker(out)),
            self._step(out, "notifications", self._notifications(out)),
        )
        return out

    async def _step(self, out: Sample, name: str, work: Any) -> bool:
        try:
            await asyncio.wait_for(work, STEP_TIMEOUT)
        except Exception as exc:
            out.errors[name] = _problem(exc)
            return False
        return True

    async def _outbox(self, out: Sample) -> None:
        for service in SERVICES:
            schema = self.ops.schemas[service]
            row = await self.pool.fetchrow(
                "SELECT to_regclass($1) IS NOT NULL AS o, to_regclass($2) IS NOT NULL AS d",
                f'"{schema}".kafka_outbox',
                f'"{schema}".kafka_outbox_dead',
            )
            backlog = (
                await self.pool.fetchval(f'SELECT count(*) FROM "{schema}".kafka_outbox')
                if row["o"]
                else None
            )
            dead = (
                await self.pool.fetchval(f'SELECT count(*) FROM "{schema}".kafka_outbox_dead')
                if row["d"]
                else None
            )
            out.outbox[service] = {"backlog": backlog, "dead": dead}

    async def _kafka(self, out: Sample) -> None:
        """End offsets per topic and partition, then the group's offsets and lag, with the kept
        clients (one after the other: they share the consumer). Any failure closes the clients;
        the next sample opens new ones."""
        try:
            metadata, admin, consumer = await asyncio.wait_for(self.kafka.get(), STEP_TIMEOUT)
        except Exception as exc:
            for step in KAFKA_STEPS:
                out.errors[step] = _problem(exc)
            await self.kafka.close()
            return
        ok = await self._step(out, "topics", self._topics(out, metadata, consumer))
        ok = await self._step(out, "lag", self._lag(out, admin, consumer)) and ok
        if not ok:
            await self.kafka.close()

    async def _topics(self, out: Sample, metadata: TopicMetadata, consumer: AIOKafkaConsumer) -> None:
        counts = await metadata.partition_counts()
        prefix = self.ops.kafka.topic_prefix
        names = [t for t in counts if t.startswith(prefix) and not t.startswith("__")]
        tps = [TopicPartition(t, p) for t in names for p in range(counts[t])]
        if not tps:
            return
        end = await consumer.end_offsets(tps)
        for tp, offset in end.items():
            out.ends[(records.logical(self.ops.kafka, tp.topic), tp.partition)] = offset

    async def _lag(self, out: Sample, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        out.partitions = await lag.group_lag(self.ops, admin, consumer)

    async def _worker(self, out: Sample) -> None:
        for url in self.workers:
            async with self.session.get(
                f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=STEP_TIMEOUT)
            ) as resp:
                text = await resp.text()
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    if name in WORKER_FIGURES:
                        key = WORKER_FIGURES[name]
                        out.worker[key] = out.worker.get(key, 0.0) + float(value)

    async def _notifications(self, out: Sample) -> None:
        out.notifications = await notices.counts(self.pool, self.ops)

    # what the pages show

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def rate(self, series: str, window: int = 2) -> float | None:
        """Per second, between the latest sample and the one `window` samples before."""
        if len(self.samples) < 2:
            return None
        s0, s1 = self.samples[max(0, len(self.samples) - window)], self.samples[-1]
        v0, v1 = s0.value(series), s1.value(series)
        if v0 is None or v1 is None or s1.at <= s0.at:
            return None
        return max(0.0, (v1 - v0) / (s1.at - s0.at))

    def series(self, name: str) -> list[tuple[float, float | None]]:
        """(time, value) of one figure over the history: `topic:<t>` and `part:<t>/<p>` (records
        in), `out:<t>` and `part_out:<t>/<p>` (records out: the group's committed offsets), `lag:`,
        `lag:<t>`, `lag:<t>/<p>`, `outbox:<service>` (backlog), `outbox_dead:<service>`,
        `worker:<key>`, `notifications:<status>`."""
        return [(s.at, s.value(name)) for s in self.samples]

    def rates(self, name: str) -> list[tuple[float, float | None]]:
        """The per-second rate of a counter between consecutive samples."""
        points = self.series(name)
        out: list[tuple[float, float | None]] = []
        for (t0, v0), (t1, v1) in itertools.pairwise(points):
            out.append(
                (t1, None if v0 is None or v1 is None or t1 <= t0 else max(0.0, (v1 - v0) / (t1 - t0)))
            )
        return out

    def chart_list(self) -> list[tuple[str, str, str, str]]:
        """Every chart the flow page draws: (series, title, how: `rate` or `level`, group), in
        page order. Each rate and each lag, per topic and per partition; the outbox backlogs."""
        s = self.latest()
        if s is None:
            return []
        out = [("lag:", "consumer lag", "level", "main")]
        out += [(f"outbox:{svc}", f"{svc} outbox backlog", "level", "main") for svc in s.outbox]
        out += [(f"outbox_dead:{svc}", f"{svc} outbox dead letters", "level", "main") for svc in s.outbox]
        for topic in sorted(s.topics):
            out.append((f"topic:{topic}", f"{topic} records in", "rate", "main"))
        consumed = sorted({p["topic"] for p in s.partitions})
        for topic in consumed:
            out.append((f"out:{topic}", f"{topic} records out", "rate", "main"))
            out.append((f"lag:{topic}", f"{topic} lag", "level", "main"))
        for key in WORKER_FIGURES.values():
            how = "level" if key in WORKER_LEVELS else "rate"
            out.append((f"worker:{key}", key, how, "main"))
        for topic, partition in sorted(s.ends):
            out.append((f"part:{topic}/{partition}", f"{topic}/{partition} in", "rate", "partition"))
        for p in s.partitions:
            where = f"{p['topic']}/{p['partition']}"
            out.append((f"part_out:{where}", f"{where} out", "rate", "partition"))
            out.append((f"lag:{where}", f"{where} lag", "level", "partition"))
        return out

    def charts(self) -> dict[str, Markup]:
        """Every chart of `chart_list` (series -> SVG), as the page draws them."""
        out: dict[str, Markup] = {}
        for name, title, how, _group in self.chart_list():
            points = self.rates(name) if how == "rate" else self.series(name)
            unit = "/s" if how == "rate" else ""
            out[name] = charts.line_chart(name, title, points, HISTORY_SECONDS, self.origin, unit)
        return out

    def points(self) -> str:
        """The latest sample's point of every chart, as JSON for the live stream: {"at": time,
        "origin": the charts' time 0, "points": {series: value or null}}; worked out once per
        sample, however many watch."""
        s = self.latest()
        if s is None:
            return json.dumps({"at": None, "origin": self.origin, "points": {}})
        if self._points is None or self._points[0] != s.at:
            values = {
                name: _round(self.rate(name)) if how == "rate" else s.value(name)
                for name, _title, how, _group in self.chart_list()
            }
            self._points = (s.at, json.dumps({"at": s.at, "origin": self.origin, "points": values}))
        return self._points[1]

    def snapshot(self) -> dict[str, Any]:
        """The latest figures as the page and its live updates show them."""
        s = self.latest()
        if s is None:
            return {"ready": False}
        figures: dict[str, Any] = {"ready": True, "at": s.at, "errors": s.errors}
        for service, v in s.outbox.items():
            figures[f"outbox.{service}.backlog"] = v["backlog"]
            figures[f"outbox.{service}.dead"] = v["dead"]
        for topic, end in s.topics.items():
            figures[f"topic.{topic}.records"] = end
            figures[f"topic.{topic}.rate"] = _round(self.rate(f"topic:{topic}"))
            figures[f"topic.{topic}.out"] = s.committed(topic)
            figures[f"topic.{topic}.out_rate"] = _round(self.rate(f"out:{topic}"))
        for (topic, partition), end in s.ends.items():
            where = f"{topic}.{partition}"
            out, lagged = s.value(f"part_out:{topic}/{partition}"), s.value(f"lag:{topic}/{partition}")
            figures[f"part.{where}.in"] = end
            figures[f"part.{where}.in_rate"] = _round(self.rate(f"part:{topic}/{partition}"))
            figures[f"part.{where}.out"] = None if out is None else int(out)
            figures[f"part.{where}.out_rate"] = _round(self.rate(f"part_out:{topic}/{partition}"))
            figures[f"part.{where}.lag"] = None if lagged is None else int(lagged)
        for key in WORKER_FIGURES.values():
            figures[f"worker.{key}"] = s.worker.get(key) if "worker" not in s.errors else None
            figures[f"worker.{key}.rate"] = _round(self.rate(f"worker:{key}"))
        figures["lag"] = s.lag()
        for status, n in s.notifications.items():
            figures[f"notifications.{status}"] = n
        return figures


def _problem(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {STEP_TIMEOUT:g} s"
    return f"{type(exc).__name__}: {exc}"[:300]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
