"""The stream topics in a consumer group: fetch, and route each partition's records to its worker.

One consumer in `group_id` (read_committed, offsets committed only inside the partitions'
transactions). Each assigned partition has a worker (`partition.py`) with its own transaction
(`transaction.py`); fetching a partition pauses while its worker is full (`pausing.py`); records
fetched for a partition whose worker is not set up yet are fetched again later. An output topic
with as many partitions as its stream keeps each record's partition. Each stream topic's
changelog of parked records (`parked_log.py`) is created with as many partitions as the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration import TopicMetadata, TopicSpec, ensure_topics
from materializer.engine import Engine
from materializer.runtime.counters import Counters
from materializer.runtime.parked_log import ParkedLog, parked_topic
from materializer.runtime.partition import PartitionWorker, Routes
from materializer.runtime.pausing import Pausing
from materializer.runtime.rebalance import Rebalance
from materializer.runtime.table_reader import TableReader
from materializer.runtime.transaction import PartitionTransaction, start_transactional_producer
from materializer.settings import MaterializerSettings
from materializer.topology import Topology

log = logging.getLogger(__name__)


class StreamReader:
    """The stream topics in the consumer group: fetches, and hands each partition's records to
    its worker (pausing the partition while its worker is full)."""

    def __init__(
        self,
        settings: MaterializerSettings,
        topology: Topology,
        engine: Engine,
        tables: TableReader,
        counters: Counters,
    ) -> None:
        self.settings = settings
        self._topology = topology
        self._engine = engine
        self._tables = tables
        self._counters = counters
        kafka = settings.kafka
        self._logical = {kafka.topic(j.stream.topic): j.stream.topic for j in topology.joins.values()}
        self.consumer: AIOKafkaConsumer | None = None
        self.parked = ParkedLog(kafka, settings.group_id)
        self.pausing: Pausing | None = None
        self.rebalance = Rebalance(self._open_partition)
        self._routes = Routes({}, None)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def workers(self) -> dict[TopicPartition, PartitionWorker]:
        return self.rebalance.workers

    async def start(self, metadata: TopicMetadata) -> None:
        s = self.settings
        kafka = s.kafka
        counts = await metadata.partition_counts()
        # The changelogs are internal topics: created even with `create_topics=False`, as Kafka
        # Streams creates its own (the secured broker's ACLs let the worker create `<group>-*`).
        await ensure_topics(
            kafka,
            [
                TopicSpec(
                    parked_topic(s.group_id, logical), partitions=counts.get(physical, s.topic_partitions)
                )
                for physical, logical in sorted(self._logical.items())
            ],
        )
        await self.parked.start()
        self.consumer = AIOKafkaConsumer(
            **kafka.client_kwargs(),
            group_id=s.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_partition_fetch_bytes=2 * 1024 * 1024,
        )
        await self.consumer.start()
        self.pausing = Pausing(self.consumer, s.max_queued_records)
        # An output topic with as many partitions as its stream gets each record in the stream
        # record's partition: the key's partition is kept (whatever partitioner the producer of
        # the stream used) and no hashing is needed.
        outputs = {}
        for j in self._topology.joins.values():
            if j.to_topic:
                out = kafka.topic(j.to_topic)
                outputs[j.name] = (out, counts.get(out, 0) == counts.get(kafka.topic(j.stream.topic), -1))
        dead = kafka.topic(s.dead_letter_topic) if s.dead_letter_topic else None
        self._routes = Routes(outputs, dead)
        self.consumer.subscribe(sorted(self._logical), listener=self.rebalance)
        self._task = asyncio.create_task(self._run(), name="materializer-streams")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.rebalance.revoke(set(self.workers))
        if self.consumer is not None:
            await self.consumer.stop()
        await self.parked.stop()

    async def _run(self) -> None:
        assert self.consumer is not None and self.pausing is not None
        consumer = self.consumer
        pausing = self.pausing
        workers = self.rebalance.workers
        limit = self.settings.max_queued_records
        while not self._stopping:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=limit)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream consumption failed; retrying")
                await asyncio.sleep(1.0)
                continue
            seen_at = time.monotonic()
            for tp, rs in batches.items():
                worker = workers.get(tp)
                if worker is None:
                    # fetched while its assignment is still being set up: fetch them again later
                    pausing.rewind(tp, rs[0].offset)
                    continue
                worker.push(rs, seen_at)
                pausing.pause_if_full(tp, len(worker.queue))

    async def _open_partition(self, tp: TopicPartition) -> PartitionWorker:
        """A new partition's worker: its transactional producer, then a seek to the committed offset."""
        assert self.consumer is not None and self.pausing is not None
        logical = self._logical[tp.topic]

        def retry() -> bool:
            return not self._stopping

        producer = await start_transactional_producer(self.settings, logical, tp)
        committed = await self.consumer.committed(tp)
        if committed is not None:
            self.consumer.seek(tp, committed)
        txn = PartitionTransaction(
            tp,
            producer,
            group_id=self.settings.group_id,
            committed=committed,
            reopen=lambda: start_transactional_producer(self.settings, logical, tp, retry=retry),
        )
        return PartitionWorker(
            tp,
            logical,
            settings=self.settings,
            engine=self._engine,
            tables=self._tables,
            transaction=txn,
            pausing=self.pausing,
            routes=dataclasses.replace(self._routes, parked=self.parked.topic(logical)),
            counters=self._counters,
            parked=self.parked,
        )

    def assignment(self) -> set[tuple[str, int]]:
        return {(w.logical, tp.partition) for tp, w in self.workers.items()}

    async def caught_up(self) -> None:
        assert self.consumer is not None
        while not self.consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no assignment event
            await asyncio.sleep(0.05)
        workers = dict(self.workers)
        end = await self.consumer.end_offsets(list(workers))
        for tp, worker in workers.items():
            while (worker.committed or 0) < end[tp] and not worker.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    async def lag(self) -> dict[tuple[str, int], int]:
        """Records not yet committed, per (logical topic, partition) this worker owns."""
        if self.consumer is None or not self.workers:
            return {}
        workers = dict(self.workers)
        end = await self.consumer.end_offsets(list(workers))
        return {(w.logical, tp.partition): max(0, end[tp] - (w.committed or 0)) for tp, w in workers.items()}
