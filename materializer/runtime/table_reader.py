"""The global tables: every partition of every table topic, read by every worker.

- One consumer with no group is assigned every partition of every table topic (each worker has
  all rows). Each poll is folded into ONE store write with the offsets; a restart seeks to the
  stored offsets. Stored offsets beyond a topic's end (topics recreated) rebuild the state from
  the beginning (`restore`). A poll that fails is fetched again from the last applied offsets.
- Table dead letters are acknowledged before the offsets move past them.
- Join alignment: `ready(topics, T, seen_at)` returns once the tables have consumed every
  partition up to a record of time >= T, or up to the end offsets fetched after the stream
  record was fetched (`seen_at`). End offsets are asked on a connection of their own, so the
  request does not queue behind the fetching consumer's long poll.
- `aligned_time(topics)`: the record time up to which the tables are known complete, without
  asking the broker: per partition the latest record time applied, or, once everything the last
  fetch response reported is applied, that response's wall time (less `ARRIVAL_MARGIN_MS`, for a
  record still on its way to the broker). Parked records are settled against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import TopicMetadata
from materializer.engine import Engine
from materializer.runtime.counters import Counters
from materializer.runtime.dead_letters import DeadLetterProducer
from materializer.settings import MaterializerSettings
from materializer.source import Record
from materializer.state import restore

log = logging.getLogger(__name__)

ARRIVAL_MARGIN_MS = 1000  # a record reaches the broker within this after its timestamp


class TableReader:
    """Every partition of every table topic, folded into the store one poll at a time; and the
    alignment of stream records to the tables (`ready`, `changed`, `sync`)."""

    def __init__(
        self,
        settings: MaterializerSettings,
        engine: Engine,
        topics: Iterable[str],
        *,
        fingerprint: str,
        counters: Counters,
        dead_letters: DeadLetterProducer,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._topics = sorted(topics)
        self._fingerprint = fingerprint
        self._counters = counters
        self._dead_letters = dead_letters
        self.consumer: AIOKafkaConsumer | None = None
        # End offsets are asked on a connection of their own: on the fetching consumer's, the
        # request would wait behind its long-polling fetch (up to fetch_max_wait_ms per join).
        self.offsets: AIOKafkaConsumer | None = None
        self.tps: list[TopicPartition] = []
        self.logical: dict[TopicPartition, str] = {}
        self.pos: dict[TopicPartition, int] = {}
        self.last_ts: dict[TopicPartition, int] = {}
        self.synced_at = -1.0
        self.generation = 0  # bumped at each applied poll
        self._sync_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, metadata: TopicMetadata) -> None:
        kafka = self.settings.kafka
        self.consumer = AIOKafkaConsumer(
            **kafka.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
        )
        await self.consumer.start()
        self.offsets = AIOKafkaConsumer(
            **kafka.client_kwargs(), group_id=None, enable_auto_commit=False, isolation_level="read_committed"
        )
        await self.offsets.start()
        for topic in self._topics:
            for tp in await metadata.wait_partitions(kafka.topic(topic)):
                self.tps.append(tp)
                self.logical[tp] = topic
        if not self.tps:
            return
        self.consumer.assign(self.tps)
        begin = await self.consumer.beginning_offsets(self.tps)
        end = await self.consumer.end_offsets(self.tps)
        stored = self.engine.positions
        if any(stored.get((self.logical[tp], tp.partition), 0) > end[tp] for tp in self.tps):
            log.warning("stored offsets are beyond the topics' end (topics recreated?): rebuilding")
            restore(self.engine.store, self._fingerprint, stale=True)
            self.engine.reload()
            self._counters.rebuilt = True
            stored = self.engine.positions
        for tp in self.tps:
            at = max(stored.get((self.logical[tp], tp.partition), 0), begin[tp])
            self.consumer.seek(tp, at)
            self.pos[tp] = at
            self.last_ts[tp] = -1
        self._task = asyncio.create_task(self._run(), name="materializer-tables")

    async def stop(self) -> None:
        for task in (self._task, self._sync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.consumer is not None:
            await self.consumer.stop()
        if self.offsets is not None:
            await self.offsets.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        max_records = self.settings.table_poll_records
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
                if not batches:
                    continue
                positions = {tp: await consumer.position(tp) for tp in batches}
                records: list[Record] = []
                for tp, rs in batches.items():
                    topic = self.logical[tp]
                    records.extend(
                        Record(topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in rs
                    )
                    self.last_ts[tp] = max(self.last_ts[tp], max(r.timestamp for r in rs))
                batch, dead = self.engine.fold_tables(records)
                if dead:  # delivered before the offsets move past them: never lost
                    await self._dead_letters.send(dead)
                self.engine.write(batch)
                self._counters.table_records_in += len(records)
                self.pos.update(positions)
                self._notify()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("table consumption failed; retrying from the last applied offsets")
                for tp in self.tps:  # what was fetched but not written is fetched again
                    consumer.seek(tp, self.pos[tp])
                await asyncio.sleep(1.0)

    def _notify(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def aligned_time(self, topics: set[str]) -> int:
        """The record time (ms) up to which every partition of `topics` is known to be applied."""
        consumer = self.consumer
        aligned: int | None = None
        for tp in self.tps:
            if self.logical[tp] not in topics:
                continue
            at = self.last_ts[tp]
            if consumer is not None:
                end = consumer.last_stable_offset(tp)
                if end is None or end < 0:
                    end = consumer.highwater(tp)
                polled = consumer.last_poll_timestamp(tp)
                if end is not None and polled is not None and self.pos[tp] >= end:
                    at = max(at, polled - ARRIVAL_MARGIN_MS)
            aligned = at if aligned is None else min(aligned, at)
        return int(time.time() * 1000) - ARRIVAL_MARGIN_MS if aligned is None else aligned

    async def changed(self, timeout: float) -> None:
        """Wait (at most `timeout`) for the next applied poll."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def ready_fast(self, topics: set[str], ts: int, seen_at: float) -> bool:
        """Whether the tables of `topics` are known to be caught up to a record of time `ts`
        fetched at `seen_at`, without asking the broker."""
        if seen_at <= self.synced_at:
            return True
        return all(self.last_ts[tp] >= ts for tp in self.tps if self.logical[tp] in topics)

    async def ready(self, topics: set[str], ts: int, seen_at: float) -> None:
        """The tables of `topics` are caught up to a record of time `ts` fetched at `seen_at`."""
        if not self.ready_fast(topics, ts, seen_at):
            await self.sync(seen_at)

    async def sync(self, after: float) -> None:
        """Consume until the end offsets fetched at or after `after` (monotonic time)."""
        while self.synced_at < after:
            task = self._sync_task
            if task is None or task.done():
                task = self._sync_task = asyncio.create_task(self._sync_once())
            await asyncio.shield(task)

    async def _sync_once(self) -> None:
        assert self.offsets is not None
        started = time.monotonic()
        if self.tps:
            end = await self.offsets.end_offsets(self.tps)
            while any(self.pos[tp] < end[tp] for tp in self.tps):
                await self.changed(1.0)
        self.synced_at = max(self.synced_at, started)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet read, per (logical topic, partition)."""
        if self.consumer is None or not self.tps:
            return {}
        end = await self.consumer.end_offsets(self.tps)
        return {(self.logical[tp], tp.partition): max(0, end[tp] - self.pos[tp]) for tp in self.tps}
