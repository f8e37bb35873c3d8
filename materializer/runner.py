"""The Kafka runner: global tables, stream partitions in a consumer group, transactional output.

- Tables: one consumer with no group is assigned every partition of every table topic (global
  tables: each worker has all rows). Each poll is folded into ONE store write with the offsets;
  a restart seeks to the stored offsets, an empty or damaged store rebuilds from the beginning.
- Streams: one consumer in `group_id`. Each assigned partition has a worker task and its own
  transactional producer (`transactional_id = {group_id}.{topic}.{partition}`: a new owner
  fences the old one and aborts its open transaction). Outputs, stream dead letters and the
  partition's next offset are committed in one Kafka transaction, so `to_topic` holds each
  output exactly once for read_committed consumers, across kill -9 and rebalances. `on_output`
  is awaited before the transaction that commits the record's offset: at least once, in order.
- Join alignment: before joining a record of time T, the tables have consumed every partition
  up to a record of time >= T or up to the end offsets fetched after the record was fetched.
  A record whose row is still missing waits (its partition waits; others go on) up to
  `join_wait_seconds`, then is dead-lettered (INNER) or emitted with nulls (LEFT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from kafka_integration import TopicSpec, ensure_topics
from materializer.deadletter import DeadLetter
from materializer.engine import Engine, Outcome
from materializer.errors import NotStarted, TopologyError
from materializer.runtime.topics import TopicMetadata
from materializer.settings import MaterializerSettings
from materializer.source import Record
from materializer.state import MemoryState, RocksState, Store, restore
from materializer.tables import TableView
from materializer.topology import Topology

log = logging.getLogger(__name__)

StateKind = Literal["rocksdb", "memory"]


class Materializer:
    """Tables and joins of a `Topology`, kept up to date from Kafka.

        async with Materializer(topology, settings) as m:
            m.table("customers_table").get("10")

    Counters for metrics: `records_in` (stream records handled), `table_records_in`,
    `records_out` (joined outputs), `dead_letters`; `rebuilt` (the state was rebuilt from the
    topics at start); `await lag()` for the consumer lag.
    """

    def __init__(
        self, topology: Topology, settings: MaterializerSettings, *, state: StateKind | Store = "rocksdb"
    ) -> None:
        if not isinstance(state, Store) and state == "rocksdb" and settings.state_dir is None:
            raise TopologyError("a RocksDB state needs settings.state_dir (or state='memory')")
        self.topology = topology
        self.settings = settings
        self.counters = Counters()
        self._state_kind = state
        self.store: Store | None = None
        self.engine: Engine | None = None
        self._tables: TableReader | None = None
        self._streams: StreamReader | None = None
        self._dead_letters: DeadLetterProducer | None = None
        self._started = False
        self._connected = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None

    @property
    def records_in(self) -> int:
        return self.counters.records_in

    @property
    def table_records_in(self) -> int:
        return self.counters.table_records_in

    @property
    def records_out(self) -> int:
        return self.counters.records_out

    @property
    def dead_letters(self) -> int:
        return self.counters.dead_letters

    @property
    def rebuilt(self) -> bool:
        return self.counters.rebuilt

    # lifecycle

    async def start(self) -> None:
        if self._started:
            return
        if isinstance(self._state_kind, Store):
            self.store = self._state_kind
        elif self._state_kind == "memory":
            self.store = MemoryState()
        else:
            assert self.settings.state_dir is not None
            self.store = await asyncio.to_thread(RocksState, self.settings.state_dir)
        damaged = getattr(self.store, "rebuilt", False)
        self.counters.rebuilt = restore(self.store, self._fingerprint()) or damaged
        self.engine = Engine(self.topology, self.store)
        self._started = True
        try:
            await self._connect()
        except KafkaError as exc:
            # Kafka may be down: the tables are readable from the state as it stands, and the
            # materializer connects (and catches up) in the background once the broker answers.
            log.warning("Kafka is not reachable (%s): connecting in the background", exc)
            await self._close_kafka()
            self._connecting = asyncio.create_task(self._connect_later(), name="materializer-connect")
        except BaseException:
            self._started = False
            await self._close()
            raise

    def _fingerprint(self) -> str:
        return self.topology.fingerprint(self.settings.kafka.topic)

    async def _connect(self) -> None:
        s = self.settings
        assert self.engine is not None
        if s.create_topics:
            await ensure_topics(s.kafka, self._topic_specs())
        self._dead_letters = DeadLetterProducer(s, self.counters)
        await self._dead_letters.start()
        async with TopicMetadata(s.kafka) as metadata:
            self._tables = TableReader(
                s,
                self.engine,
                self.topology.table_topics(),
                fingerprint=self._fingerprint(),
                counters=self.counters,
                dead_letters=self._dead_letters,
            )
            await self._tables.start(metadata)
            if self.topology.joins:
                self._streams = StreamReader(s, self.topology, self.engine, self._tables, self.counters)
                await self._streams.start(metadata)
        self._connected.set()

    async def _connect_later(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self._connect()
                log.info("connected to Kafka")
                return
            except KafkaError as exc:
                log.warning("Kafka is still not reachable (%s)", exc)
                await self._close_kafka()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._close()

    async def _close_kafka(self) -> None:
        if self._streams is not None:
            await self._streams.stop()
            self._streams = None
        if self._tables is not None:
            await self._tables.stop()
            self._tables = None
        if self._dead_letters is not None:
            await self._dead_letters.stop()
            self._dead_letters = None

    async def _close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        self._connected.clear()
        await self._close_kafka()
        if self.store is not None and not isinstance(self._state_kind, Store):
            self.store.close()

    def connected(self) -> bool:
        """Whether the Kafka clients are running (False while Kafka was unreachable at start)."""
        return self._connected.is_set()

    async def __aenter__(self) -> Materializer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _topic_specs(self) -> list[TopicSpec]:
        parts = self.settings.topic_partitions
        specs = [TopicSpec(t, partitions=parts, compacted=True) for t in sorted(self.topology.table_topics())]
        streams = {j.stream.topic for j in self.topology.joins.values()} | self.topology.output_topics()
        specs += [TopicSpec(t, partitions=parts, compacted=False) for t in sorted(streams)]
        if self.settings.dead_letter_topic:
            specs.append(TopicSpec(self.settings.dead_letter_topic, partitions=parts, compacted=False))
        return specs

    # reading

    def _require(self) -> Engine:
        if not self._started or self.engine is None:
            raise NotStarted("the materializer is not started: call `await start()` (or use `async with`)")
        return self.engine

    def table(self, name: str) -> TableView:
        """Read access to a table or filtered table (get by key, items, len)."""
        engine = self._require()
        return TableView(engine.store, self.topology.get_table(name))

    async def wait_caught_up(self, timeout: float | None = None, *, streams: bool = False) -> None:
        """Return once the tables have consumed up to the end offsets the broker reports now;
        with `streams=True` also once this worker's stream partitions have committed up to
        theirs. Raises TimeoutError after `timeout` seconds."""
        self._require()
        async with asyncio.timeout(timeout):
            called = time.monotonic()
            await self._connected.wait()
            assert self._tables is not None
            await self._tables.sync(called)
            if streams and self._streams is not None:
                await self._streams.caught_up()

    async def lag(self) -> dict[str, int]:
        """Records not yet consumed, per logical topic (tables and this worker's stream partitions)."""
        self._require()
        out: dict[str, int] = {}
        for reader in (self._tables, self._streams):
            if reader is not None:
                for topic, n in (await reader.lag()).items():
                    out[topic] = out.get(topic, 0) + n
        return out

    def assignment(self) -> set[tuple[str, int]]:
        """The stream partitions this worker owns now (logical topic, partition)."""
        return set() if self._streams is None else self._streams.assignment()


@dataclass(slots=True)
class Counters:
    """What the runtime has done, for metrics and tests. One object, handed to those that count:
    the table reader, the dead-letter producer and the partition workers."""

    records_in: int = 0  # stream records handled
    table_records_in: int = 0  # table records applied
    records_out: int = 0  # joined outputs
    dead_letters: int = 0  # records refused, from tables and streams
    rebuilt: bool = False  # the state was wiped (damaged, another topology, stale) and rebuilt


class DeadLetterProducer:
    """Dead letters of table records, sent outside any transaction and awaited until acknowledged
    (the table reader moves its offsets only after). Stream dead letters go in their partition's
    transaction instead."""

    def __init__(self, settings: MaterializerSettings, counters: Counters) -> None:
        self._kafka = settings.kafka
        self._topic = settings.dead_letter_topic
        self._counters = counters
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._kafka.client_kwargs(), enable_idempotence=True, acks="all")
        try:
            await self._producer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Count and log each letter; send them to the dead-letter topic, if any, and wait for all."""
        self._counters.dead_letters += len(letters)
        for letter in letters:
            log.warning("dead letter from %s: %s", letter.record.topic, letter.reason)
        if not self._topic or self._producer is None:
            return
        name = self._kafka.topic(self._topic)
        futures = [await self._producer.send(name, d.encode(), key=d.record.key) for d in letters]
        await asyncio.gather(*futures)


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
        self._changed.set()
        self._changed = asyncio.Event()

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

    async def lag(self) -> dict[str, int]:
        if self.consumer is None or not self.tps:
            return {}
        end = await self.consumer.end_offsets(self.tps)
        out: dict[str, int] = {}
        for tp in self.tps:
            out[self.logical[tp]] = out.get(self.logical[tp], 0) + max(0, end[tp] - self.pos[tp])
        return out


class Pausing:
    """Pause and resume of the stream consumer's partitions, and rewinding one to an offset.

    A partition whose worker holds `max_queued` fetched records is paused; it is resumed once the
    worker is down to half of that, or when the worker rewinds after a failure."""

    def __init__(self, consumer: AIOKafkaConsumer, max_queued: int) -> None:
        self._consumer = consumer
        self._high = max_queued
        self._low = max_queued // 2
        self._paused: set[TopicPartition] = set()  # paused here (a rebalance may have resumed them)

    def owns(self, tp: TopicPartition) -> bool:
        """Whether the consumer is still assigned `tp`."""
        return tp in self._consumer.assignment()

    def pause_if_full(self, tp: TopicPartition, queued: int) -> None:
        if queued >= self._high:
            self._consumer.pause(tp)
            self._paused.add(tp)

    def resume_if_drained(self, tp: TopicPartition, queued: int) -> None:
        if queued < self._low and tp in self._paused:
            self.resume(tp)

    def resume(self, tp: TopicPartition) -> None:
        self._paused.discard(tp)
        if tp in self._consumer.paused():
            self._consumer.resume(tp)

    def rewind(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` again from `offset` (if still assigned); what was fetched after is dropped."""
        if self.owns(tp):
            self._consumer.seek(tp, offset)


async def start_transactional_producer(
    settings: MaterializerSettings,
    logical: str,
    tp: TopicPartition,
    *,
    retry: Callable[[], bool] = lambda: False,
) -> AIOKafkaProducer:
    """The transactional producer of one stream partition (`{group_id}.{topic}.{partition}`):
    starting it fences any previous producer with the same id and settles (aborts or finishes)
    its open transaction. While `retry()` says so, a failed start is tried again each second."""
    while True:
        producer = AIOKafkaProducer(
            **settings.kafka.client_kwargs(),
            transactional_id=f"{settings.group_id}.{logical}.{tp.partition}",
            transaction_timeout_ms=settings.transaction_timeout_ms,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        try:
            await producer.start()
            return producer
        except Exception:
            with contextlib.suppress(Exception):
                await producer.stop()
            if not retry():
                raise
            log.warning("%s:%s: cannot start a transactional producer yet; retrying", *tp)
            await asyncio.sleep(1.0)


class PartitionTransaction:
    """The Kafka transaction of one stream partition: outputs and dead letters go in, then the
    partition's next offset, then the commit. For read_committed consumers each output is then
    there exactly once, together with the offset that says its record is done."""

    def __init__(
        self,
        tp: TopicPartition,
        producer: AIOKafkaProducer,
        *,
        group_id: str,
        committed: int | None,
        reopen: Callable[[], Awaitable[AIOKafkaProducer]],
    ) -> None:
        self.tp = tp
        self.producer = producer
        self.committed = committed  # the partition's committed next offset
        self.pending: int | None = None  # the next offset the open transaction will commit
        self.active = False
        self.count = 0  # records in the open transaction
        self.started = 0.0  # monotonic time it began
        self._group_id = group_id
        self._reopen = reopen
        self._batches: dict[tuple[str, int], Any] = {}

    async def begin(self) -> None:
        await self.producer.begin_transaction()
        self.active = True
        self.count = 0
        self.started = time.monotonic()

    def done(self, offset: int) -> None:
        """The record at `offset` is handled: the commit will move the partition past it."""
        self.pending = offset + 1
        self.count += 1

    async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        await self.producer.send(topic, value, key=key)

    async def append(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        """Add a record to this topic partition's open batch (cheaper than one send per record);
        a full batch is handed to the producer."""
        batch = self._batches.get((topic, partition))
        if batch is None:
            batch = self._batches[(topic, partition)] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await self.producer.send_batch(batch, topic, partition=partition)
            batch = self._batches[(topic, partition)] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)

    async def commit(self) -> None:
        """Commit the open transaction, if any. A failure leaves it open: the caller calls `abort`."""
        if not self.active:
            return
        assert self.pending is not None
        # 1. hand the open record batches to the producer
        batches, self._batches = self._batches, {}
        for (topic, partition), batch in batches.items():
            if batch.record_count():
                await self.producer.send_batch(batch, topic, partition=partition)
        # 2. flush: aiokafka does not wait for in-flight sends before EndTxn
        await self.producer.flush()
        # 3. produce the partition's next offset into the transaction
        await self.producer.send_offsets_to_transaction({self.tp: self.pending}, self._group_id)
        # 4. commit (EndTxn): the outputs and the offset become visible together
        await self.producer.commit_transaction()
        log.debug("%s:%s committed %s", *self.tp, self.pending)
        self.active = False
        self.committed = self.pending

    async def abort(self, *, settle: bool = True) -> None:
        """After a failure: 1. forget the unsent batches; 2. with `settle`, abort the open
        transaction, or 3. replace a producer that cannot (the new one fences the old one and
        aborts its transaction). The caller rewinds the partition to `committed`."""
        self._batches = {}
        failed, self.active = self.active, False
        if not (settle and failed):
            return
        try:
            await asyncio.wait_for(self.producer.abort_transaction(), 30)
        except Exception:
            log.warning("%s:%s: replacing the transactional producer", *self.tp)
            with contextlib.suppress(Exception):
                await self.producer.stop()
            self.producer = await self._reopen()

    async def close(self) -> None:
        await self.producer.stop()


@dataclass(frozen=True)
class Routes:
    """Where a stream partition's results go: per join, its physical output topic and whether the
    output keeps the stream record's partition; the physical dead-letter topic, if any."""

    outputs: dict[str, tuple[str, bool]]
    dead_letters: str | None


class PartitionWorker:
    """One stream partition, in offset order: align the tables, join (waiting if needed), send
    into the partition's transaction, commit. On failure: rewind to the committed offset, abort."""

    def __init__(
        self,
        tp: TopicPartition,
        logical: str,
        *,
        settings: MaterializerSettings,
        engine: Engine,
        tables: TableReader,
        transaction: PartitionTransaction,
        pausing: Pausing,
        routes: Routes,
        counters: Counters,
    ) -> None:
        self.tp = tp
        self.logical = logical
        self.settings = settings
        self.engine = engine
        self.tables = tables
        self.txn = transaction
        self.pausing = pausing
        self.counters = counters
        self.needs = engine.stream_tables(logical)
        self.queue: deque[tuple[Any, float]] = deque()
        self.next_offset = transaction.committed
        self._dead_topic = routes.dead_letters
        self._outputs = {
            name: (topic, tp.partition if same else None) for name, (topic, same) in routes.outputs.items()
        }
        self._first_offset: int | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def committed(self) -> int | None:
        return self.txn.committed

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"materializer-{self.tp.topic}-{self.tp.partition}"
        )

    def done(self) -> bool:
        return self._task is None or self._task.done()

    def push(self, records: list[Any], seen_at: float) -> None:
        if self._first_offset is None:
            self._first_offset = records[0].offset
        self.queue.extend((r, seen_at) for r in records)
        self._wake.set()

    def release(self) -> None:
        """The partition is leaving: finish the current record, commit, and stop."""
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        self.release()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.txn.close()

    async def _run(self) -> None:
        try:
            await self._loop()
        except ProducerFenced:
            log.warning("%s:%s: fenced by a newer owner; stopping", self.tp.topic, self.tp.partition)
        except asyncio.CancelledError:
            await self._recover()
            raise
        except Exception:
            log.exception("%s:%s: processing failed; will resume from the committed offset", *self.tp)
            await self._recover()

    async def _loop(self) -> None:
        settings = self.settings
        tables = self.tables
        txn = self.txn
        queue = self.queue
        while not self._stopping:
            if not queue:
                # Idle: commit, but not sooner than commit_interval after the transaction began,
                # so sparse records (one every few ms) share a commit instead of paying one each.
                young = settings.commit_interval_seconds - (time.monotonic() - txn.started)
                self._wake.clear()
                if txn.active and young > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), young)
                    continue
                await txn.commit()
                if not queue and not self._stopping:
                    await self._wake.wait()
                continue
            raw, seen_at = queue[0]
            if self.next_offset is not None and raw.offset < self.next_offset:
                queue.popleft()  # a redelivery below what this worker has already done
                continue
            record = Record(self.logical, raw.partition, raw.offset, raw.timestamp, raw.key, raw.value)
            if not tables.ready_fast(self.needs, record.timestamp, seen_at):
                await tables.ready(self.needs, record.timestamp, seen_at)
            outcome = self.engine.decide(record)
            if outcome.wait:
                await txn.commit()  # do not hold a transaction open while waiting
                waited = await self._wait(record)
                if waited is None:
                    break
                outcome = waited
            if not txn.active:
                await txn.begin()
            await self._emit(record, outcome)
            queue.popleft()
            self.counters.records_in += 1
            self.next_offset = record.offset + 1
            txn.done(record.offset)
            if (
                txn.count >= settings.max_batch_records
                or time.monotonic() - txn.started >= settings.commit_interval_seconds
            ):
                await txn.commit()
            self.pausing.resume_if_drained(self.tp, len(queue))
        await txn.commit()

    async def _wait(self, record: Record) -> Outcome | None:
        bound = self.settings.join_wait_seconds
        deadline = time.monotonic() + bound
        while True:
            if self._stopping:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.engine.decide(record, expired=True, waited=bound)
            await self.tables.changed(min(remaining, 0.5))
            outcome = self.engine.decide(record)
            if not outcome.wait:
                return outcome

    async def _emit(self, record: Record, outcome: Outcome) -> None:
        txn = self.txn
        for letter in outcome.dead:
            self.counters.dead_letters += 1
            log.warning(
                "dead letter from %s:%s@%s: %s", record.topic, record.partition, record.offset, letter.reason
            )
            if self._dead_topic:
                await txn.send(self._dead_topic, letter.encode(), record.key)
        for spec, output in outcome.emits:
            self.counters.records_out += 1
            route = self._outputs.get(spec.name)
            if route is not None:
                topic, partition = route
                if partition is None:
                    await txn.send(topic, orjson.dumps(output), record.key)
                else:
                    await txn.append(topic, partition, record.key, orjson.dumps(output))
            if spec.on_output is not None:
                await spec.on_output(output, record.source())

    async def _recover(self) -> None:
        """After a failure: rewind to the committed offset (the queued records will be fetched
        again), abort the open transaction (or replace a producer that cannot), and start again."""
        mine = self.pausing.owns(self.tp) and not self._stopping
        restart_at = self.txn.committed if self.txn.committed is not None else self._first_offset
        if mine and restart_at is not None:
            self.pausing.rewind(self.tp, restart_at)  # before any await: nothing newer is queued meanwhile
        self.queue.clear()
        self.next_offset = self.txn.committed
        self.pausing.resume(self.tp)
        await self.txn.abort(settle=mine)
        if not mine:
            return
        await asyncio.sleep(1.0)
        if not self._stopping:
            self.start()


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The stream partitions this worker owns, as the group assigns and revokes them.

    Assigned: `open_partition` makes each new partition's worker (its transactional producer's
    start fences a previous owner and settles its open transaction), then the worker starts.
    Revoked: each worker finishes its current record, commits, and stops, before the group moves
    the partition on (aiokafka awaits this listener)."""

    def __init__(self, open_partition: Callable[[TopicPartition], Awaitable[PartitionWorker]]) -> None:
        self._open = open_partition
        self.workers: dict[TopicPartition, PartitionWorker] = {}

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.assign(set(assigned))

    async def assign(self, assigned: set[TopicPartition]) -> None:
        new = [tp for tp in sorted(assigned) if tp not in self.workers]
        opened = await asyncio.gather(*(self._open(tp) for tp in new))
        for tp, worker in zip(new, opened, strict=True):
            self.workers[tp] = worker
            worker.start()
        log.info("stream partitions assigned: %s", [f"{t.topic}:{t.partition}" for t in new])

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        gone = [self.workers.pop(tp) for tp in sorted(revoked) if tp in self.workers]
        for worker in gone:
            worker.release()  # at once: a worker recovering from a failure must not restart
        await asyncio.gather(*(w.stop() for w in gone))
        if gone:
            log.info("stream partitions revoked: %s", [f"{w.tp.topic}:{w.tp.partition}" for w in gone])


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
        counts = await metadata.partition_counts()
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
            routes=self._routes,
            counters=self._counters,
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

    async def lag(self) -> dict[str, int]:
        if self.consumer is None or not self.workers:
            return {}
        end = await self.consumer.end_offsets(list(self.workers))
        out: dict[str, int] = {}
        for tp, worker in self.workers.items():
            out[worker.logical] = out.get(worker.logical, 0) + max(0, end[tp] - (worker.committed or 0))
        return out
