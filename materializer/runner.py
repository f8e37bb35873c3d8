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
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from kafka_integration import TopicSpec, check_credentials, ensure_topics
from materializer.deadletter import DeadLetter
from materializer.engine import Engine, Outcome
from materializer.errors import NotStarted, TopologyError
from materializer.settings import MaterializerSettings
from materializer.source import Record
from materializer.state import MemoryState, RocksState, Store
from materializer.tables import TableView
from materializer.topology import Topology

log = logging.getLogger(__name__)

StateKind = Literal["rocksdb", "memory"]


class Materializer:
    """Tables and joins of a `Topology`, kept up to date from Kafka.

        async with Materializer(topology, settings) as m:
            m.table("customers_table").get("10")

    Counters for metrics: `records_in` (stream records handled), `table_records_in`,
    `records_out` (joined outputs), `dead_letters`; `await lag()` for the consumer lag.
    """

    def __init__(
        self, topology: Topology, settings: MaterializerSettings, *, state: StateKind | Store = "rocksdb"
    ) -> None:
        if not isinstance(state, Store) and state == "rocksdb" and settings.state_dir is None:
            raise TopologyError("a RocksDB state needs settings.state_dir (or state='memory')")
        self.topology = topology
        self.settings = settings
        self._state_kind = state
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.records_in = 0
        self.table_records_in = 0
        self.records_out = 0
        self.dead_letters = 0
        self.rebuilt = False
        self._tables: _TableReader | None = None
        self._streams: _StreamReader | None = None
        self._dead_producer: AIOKafkaProducer | None = None
        self._started = False
        self._connected = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None

    # lifecycle

    async def start(self) -> None:
        if self._started:
            return
        s = self.settings
        kafka = s.kafka
        if isinstance(self._state_kind, Store):
            self.store = self._state_kind
        elif self._state_kind == "memory":
            self.store = MemoryState()
        else:
            assert s.state_dir is not None
            self.store = await asyncio.to_thread(RocksState, s.state_dir)
            self.rebuilt = getattr(self.store, "rebuilt", False)
        fingerprint = self.topology.fingerprint(kafka.topic)
        if self.store.fingerprint() != fingerprint:
            if self.store.fingerprint() is not None:
                log.warning("state was made for another topology: rebuilding from the topics")
                self.rebuilt = True
            self.store.wipe()
            self.store.set_fingerprint(fingerprint)
        self.engine = Engine(self.topology, self.store)
        self._started = True
        try:
            await check_credentials(self.settings.kafka)  # a refused password is not an outage
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

    async def _connect(self) -> None:
        kafka = self.settings.kafka
        if self.settings.create_topics:
            await ensure_topics(kafka, self._topic_specs())
        self._dead_producer = AIOKafkaProducer(**kafka.client_kwargs(), enable_idempotence=True, acks="all")
        await self._dead_producer.start()
        self._tables = _TableReader(self)
        await self._tables.start()
        if self.topology.joins:
            self._streams = _StreamReader(self)
            await self._streams.start()
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
        if self._dead_producer is not None:
            await self._dead_producer.stop()
            self._dead_producer = None

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
        if self._streams is None:
            return set()
        return {(w.logical, tp.partition) for tp, w in self._streams.workers.items()}

    # dead letters outside transactions (table records)

    async def _dead_letter_now(self, letters: Sequence[DeadLetter]) -> None:
        self.dead_letters += len(letters)
        topic = self.settings.dead_letter_topic
        for letter in letters:
            log.warning("dead letter from %s: %s", letter.record.topic, letter.reason)
        if not topic or self._dead_producer is None:
            return
        name = self.settings.kafka.topic(topic)
        futures = [await self._dead_producer.send(name, d.encode(), key=d.record.key) for d in letters]
        await asyncio.gather(*futures)


def _logical(settings: MaterializerSettings, physical: str) -> str:
    prefix = settings.kafka.topic_prefix
    return physical[len(prefix) :] if prefix and physical.startswith(prefix) else physical


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float = 30.0) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        cluster = await consumer._client.fetch_all_metadata()  # fresh: the topic may be new
        found = cluster.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TopologyError(f"topic {topic!r} does not exist")
        await asyncio.sleep(0.2)


class _TableReader:
    """Every partition of every table topic, folded into the store one poll at a time."""

    def __init__(self, owner: Materializer) -> None:
        self.owner = owner
        self.settings = owner.settings
        assert owner.engine is not None
        self.engine: Engine = owner.engine
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

    async def start(self) -> None:
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
        for topic in sorted(self.owner.topology.table_topics()):
            for tp in await _partitions(self.consumer, kafka.topic(topic)):
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
            self.engine.store.wipe()
            self.engine.store.set_fingerprint(self.owner.topology.fingerprint(kafka.topic))
            self.engine.reload()
            self.owner.rebuilt = True
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
                    await self.owner._dead_letter_now(dead)
                self.engine.write(batch)
                self.owner.table_records_in += len(records)
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


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: _StreamReader) -> None:
        self.reader = reader

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.reader.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.reader.assign(set(assigned))


class _StreamReader:
    """The stream topics in the consumer group; one worker + transactional producer per partition."""

    def __init__(self, owner: Materializer) -> None:
        self.owner = owner
        self.settings = owner.settings
        self.consumer: AIOKafkaConsumer | None = None
        self.workers: dict[TopicPartition, _PartitionWorker] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.same_partition: dict[str, bool] = {}

    async def start(self) -> None:
        s = self.settings
        kafka = s.kafka
        topics = sorted({kafka.topic(j.stream.topic) for j in self.owner.topology.joins.values()})
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
        cluster = await self.consumer._client.fetch_all_metadata()
        counts = {t: len(cluster.partitions_for_topic(t) or ()) for t in cluster.topics()}
        # An output topic with as many partitions as its stream gets each record in the stream
        # record's partition: the key's partition is kept (whatever partitioner the producer of
        # the stream used) and no hashing is needed.
        self.same_partition = {
            kafka.topic(j.to_topic): counts.get(kafka.topic(j.to_topic), 0)
            == counts.get(kafka.topic(j.stream.topic), -1)
            for j in self.owner.topology.joins.values()
            if j.to_topic
        }
        self.consumer.subscribe(topics, listener=_Rebalance(self))
        self._task = asyncio.create_task(self._run(), name="materializer-streams")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.revoke(set(self.workers))
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
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
                worker = self.workers.get(tp)
                if worker is None:
                    # fetched while its assignment is still being set up: fetch them again later
                    if tp in consumer.assignment():
                        consumer.seek(tp, rs[0].offset)
                    continue
                worker.push(rs, seen_at)
                if len(worker.queue) >= limit:
                    consumer.pause(tp)

    async def assign(self, assigned: set[TopicPartition]) -> None:
        """New partitions: a transactional producer each (its start fences a previous owner and
        settles its open transaction), then seek to the committed offset."""
        assert self.consumer is not None
        new = [tp for tp in sorted(assigned) if tp not in self.workers]
        producers = await asyncio.gather(*(self.start_producer(tp) for tp in new))
        for tp, producer in zip(new, producers, strict=True):
            committed = await self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
            worker = _PartitionWorker(self, tp, producer, committed)
            self.workers[tp] = worker
            worker.start()
        log.info("stream partitions assigned: %s", [f"{t.topic}:{t.partition}" for t in new])

    async def start_producer(self, tp: TopicPartition, retry: bool = False) -> AIOKafkaProducer:
        """The transactional producer of one stream partition; starting it fences any previous
        producer with the same id and settles (aborts or finishes) its open transaction."""
        s = self.settings
        while True:
            producer = AIOKafkaProducer(
                **s.kafka.client_kwargs(),
                transactional_id=f"{s.group_id}.{_logical(s, tp.topic)}.{tp.partition}",
                transaction_timeout_ms=s.transaction_timeout_ms,
                linger_ms=5,
                max_batch_size=256 * 1024,
            )
            try:
                await producer.start()
                return producer
            except Exception:
                with contextlib.suppress(Exception):
                    await producer.stop()
                if not retry or self._stopping:
                    raise
                log.warning("%s:%s: cannot start a transactional producer yet; retrying", *tp)
                await asyncio.sleep(1.0)

    async def revoke(self, revoked: set[TopicPartition]) -> None:
        """Partitions leaving: each worker finishes its current record and commits, then stops."""
        gone = [self.workers.pop(tp) for tp in sorted(revoked) if tp in self.workers]
        await asyncio.gather(*(w.stop() for w in gone))
        if gone:
            log.info("stream partitions revoked: %s", [f"{w.tp.topic}:{w.tp.partition}" for w in gone])

    def resume(self, tp: TopicPartition) -> None:
        if self.consumer is not None and tp in self.consumer.paused():
            self.consumer.resume(tp)

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


class _PartitionWorker:
    """One stream partition, in offset order: align tables, join (waiting if needed), send, commit."""

    def __init__(
        self, reader: _StreamReader, tp: TopicPartition, producer: AIOKafkaProducer, committed: int | None
    ) -> None:
        self.reader = reader
        self.owner = reader.owner
        self.settings = reader.settings
        assert self.owner.engine is not None and self.owner._tables is not None
        self.engine: Engine = self.owner.engine
        self.tables: _TableReader = self.owner._tables
        self.tp = tp
        self.logical = _logical(self.settings, tp.topic)
        self.needs = self.engine.stream_tables(self.logical)
        self.producer = producer
        self.queue: deque[tuple[Any, float]] = deque()
        self.committed = committed
        self.next_offset = committed
        self._pending: int | None = None
        self._in_txn = False
        self._txn_count = 0
        self._txn_started = 0.0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        kafka = self.settings.kafka
        self._dead_topic = (
            kafka.topic(self.settings.dead_letter_topic) if self.settings.dead_letter_topic else None
        )
        self._out_topics = {
            j.name: kafka.topic(j.to_topic) for j in self.owner.topology.joins.values() if j.to_topic
        }
        self._out_partition = {
            name: tp.partition if reader.same_partition.get(topic) else None
            for name, topic in self._out_topics.items()
        }
        self._out_partition_by_topic = {
            topic: tp.partition for topic in self._out_topics.values() if reader.same_partition.get(topic)
        }
        self._batches: dict[str, Any] = {}
        self._first_offset: int | None = None

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

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.producer.stop()

    async def _run(self) -> None:
        try:
            await self._loop()
        except ProducerFenced:
            log.warning("%s:%s: fenced by a newer owner; stopping", self.tp.topic, self.tp.partition)
        except asyncio.CancelledError:
            await self._abort()
            raise
        except Exception:
            log.exception("%s:%s: processing failed; will resume from the committed offset", *self.tp)
            await self._abort()

    async def _loop(self) -> None:
        settings = self.settings
        tables = self.tables
        queue = self.queue
        while not self._stopping:
            if not queue:
                # Idle: commit, but not sooner than commit_interval after the transaction began,
                # so sparse records (one every few ms) share a commit instead of paying one each.
                young = settings.commit_interval_seconds - (time.monotonic() - self._txn_started)
                self._wake.clear()
                if self._in_txn and young > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), young)
                    continue
                await self._commit()
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
                await self._commit()  # do not hold a transaction open while waiting
                waited = await self._wait(record)
                if waited is None:
                    break
                outcome = waited
            if not self._in_txn:
                await self.producer.begin_transaction()
                self._in_txn = True
                self._txn_count = 0
                self._txn_started = time.monotonic()
            await self._emit(record, outcome)
            queue.popleft()
            self.owner.records_in += 1
            self.next_offset = self._pending = record.offset + 1
            self._txn_count += 1
            if (
                self._txn_count >= settings.max_batch_records
                or time.monotonic() - self._txn_started >= settings.commit_interval_seconds
            ):
                await self._commit()
            if len(queue) < settings.max_queued_records // 2:
                self.reader.resume(self.tp)
        await self._commit()

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
        send = self.producer.send
        for letter in outcome.dead:
            self.owner.dead_letters += 1
            log.warning(
                "dead letter from %s:%s@%s: %s", record.topic, record.partition, record.offset, letter.reason
            )
            if self._dead_topic:
                await send(self._dead_topic, letter.encode(), key=record.key)
        for spec, output in outcome.emits:
            self.owner.records_out += 1
            topic = self._out_topics.get(spec.name)
            if topic is not None:
                partition = self._out_partition[spec.name]
                if partition is None:
                    await send(topic, orjson.dumps(output), key=record.key)
                else:
                    await self._append(topic, partition, record.key, orjson.dumps(output))
            if spec.on_output is not None:
                await spec.on_output(output, record.source())

    async def _append(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        """Add an output to this partition's open record batch (cheaper than one send per record);
        a full batch is handed to the producer."""
        batch = self._batches.get(topic)
        if batch is None:
            batch = self._batches[topic] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            await self.producer.send_batch(batch, topic, partition=partition)
            batch = self._batches[topic] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)

    async def _send_batches(self) -> None:
        batches, self._batches = self._batches, {}
        for topic, batch in batches.items():
            if batch.record_count():
                partition = self._out_partition_by_topic[topic]
                await self.producer.send_batch(batch, topic, partition=partition)

    async def _commit(self) -> None:
        if not self._in_txn:
            return
        assert self._pending is not None
        await self._send_batches()
        await self.producer.flush()  # aiokafka does not wait for in-flight sends before EndTxn
        await self.producer.send_offsets_to_transaction({self.tp: self._pending}, self.settings.group_id)
        await self.producer.commit_transaction()
        log.debug("%s:%s committed %s", *self.tp, self._pending)
        self._in_txn = False
        self.committed = self._pending

    async def _abort(self) -> None:
        """After a failure: rewind to the committed offset (the queued records will be fetched
        again), abort the open transaction (or replace a producer that cannot), and start again."""
        self._batches = {}
        failed_txn, self._in_txn = self._in_txn, False
        consumer = self.reader.consumer
        mine = (
            consumer is not None
            and self.tp in consumer.assignment()
            and self.reader.workers.get(self.tp) is self
            and not self._stopping
        )
        restart_at = self.committed if self.committed is not None else self._first_offset
        if mine and consumer is not None and restart_at is not None:
            consumer.seek(self.tp, restart_at)  # before any await: nothing newer is queued meanwhile
        self.queue.clear()
        self.next_offset = self.committed
        self.reader.resume(self.tp)
        if not mine:
            return
        if failed_txn:
            try:
                await asyncio.wait_for(self.producer.abort_transaction(), 30)
            except Exception:
                log.warning("%s:%s: replacing the transactional producer", *self.tp)
                with contextlib.suppress(Exception):
                    await self.producer.stop()
                self.producer = await self.reader.start_producer(self.tp, retry=True)
        await asyncio.sleep(1.0)
        if self.reader.workers.get(self.tp) is self and not self._stopping:
            self.start()
