"""The flow from a write to an email, sampled every few seconds and kept for 15 minutes:

    organizations/customers/orders -> outbox -> Kafka -> materializer -> notification -> SMTP

Each sample holds, per step: the outbox backlog and dead letters per service (PostgreSQL), the
end offset of each topic and partition (records in), the worker group's committed offsets and lag
per partition (Kafka), the worker's counters (records in/out, dead letters, joins waiting for a
row, emails sent/failed, from each worker's /metrics), and notifications per status. Rates are
the difference of two samples over their interval. A figure that cannot be read is None (and the
step shows the error), never 0.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiokafka import TopicPartition

from console import lag, notices, records
from console.config import SERVICES, OperationsSettings
from kafka_integration import TopicMetadata

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


@dataclass
class Sample:
    at: float
    outbox: dict[str, dict[str, int | None]] = field(default_factory=dict)  # service -> backlog, dead
    topics: dict[str, int] = field(default_factory=dict)  # topic -> sum of end offsets
    partitions: list[dict[str, Any]] = field(default_factory=list)  # group lag rows
    worker: dict[str, float] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def lag(self) -> int | None:
        return None if "lag" in self.errors else sum(p["lag"] for p in self.partitions)


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

    async def run(self) -> None:
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

    async def sample(self) -> Sample:
        out = Sample(at=time.time())
        await asyncio.gather(
            self._step(out, "outbox", self._outbox(out)),
            self._step(out, "topics", self._topics(out)),
            self._step(out, "lag", self._lag(out)),
            self._step(out, "worker", self._worker(out)),
            self._step(out, "notifications", self._notifications(out)),
        )
        return out

    async def _step(self, out: Sample, name: str, work: Any) -> None:
        try:
            await asyncio.wait_for(work, STEP_TIMEOUT)
        except Exception as exc:
            out.errors[name] = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__

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

    async def _topics(self, out: Sample) -> None:
        async with TopicMetadata(self.ops.kafka) as metadata:
            counts = await metadata.partition_counts()
        prefix = self.ops.kafka.topic_prefix
        names = [t for t in counts if t.startswith(prefix) and not t.startswith("__")]
        tps = [TopicPartition(t, p) for t in names for p in range(counts[t])]
        if not tps:
            return
        async with records.reader(self.ops.kafka) as consumer:
            end = await consumer.end_offsets(tps)
        for tp, offset in end.items():
            name = records.logical(self.ops.kafka, tp.topic)
            out.topics[name] = out.topics.get(name, 0) + offset

    async def _lag(self, out: Sample) -> None:
        out.partitions = await lag.partition_lag(self.ops)

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
        points = self.series(series)
        if len(points) < 2:
            return None
        (t0, v0), (t1, v1) = points[max(0, len(points) - window)], points[-1]
        if v0 is None or v1 is None or t1 <= t0:
            return None
        return max(0.0, (v1 - v0) / (t1 - t0))

    def series(self, name: str) -> list[tuple[float, float | None]]:
        """(time, value) of one figure over the history: `topic:<name>`, `worker:<key>`,
        `lag`, `notifications:<status>`."""
        out: list[tuple[float, float | None]] = []
        for s in self.samples:
            kind, _, key = name.partition(":")
            value: float | None
            if kind == "topic":
                value = s.topics.get(key) if "topics" not in s.errors else None
            elif kind == "worker":
                value = s.worker.get(key) if "worker" not in s.errors else None
            elif kind == "notifications":
                value = s.notifications.get(key) if "notifications" not in s.errors else None
            else:
                lagged = s.lag()
                value = None if lagged is None else float(lagged)
            out.append((s.at, value))
        return out

    def rates(self, name: str) -> list[tuple[float, float | None]]:
        """The per-second rate of a counter between consecutive samples."""
        points = self.series(name)
        out: list[tuple[float, float | None]] = []
        for (t0, v0), (t1, v1) in itertools.pairwise(points):
            out.append(
                (t1, None if v0 is None or v1 is None or t1 <= t0 else max(0.0, (v1 - v0) / (t1 - t0)))
            )
        return out

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
        for key in WORKER_FIGURES.values():
            figures[f"worker.{key}"] = s.worker.get(key) if "worker" not in s.errors else None
            figures[f"worker.{key}.rate"] = _round(self.rate(f"worker:{key}"))
        figures["lag"] = s.lag()
        for p in s.partitions:
            figures[f"lag.{p['topic']}.{p['partition']}"] = p["lag"]
        for status, n in s.notifications.items():
            figures[f"notifications.{status}"] = n
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
