"""The Kafka runner's facade: `Materializer`, the one object an embedder holds.

It opens the state (`restore`: kept when it belongs to this topology, else rebuilt from the
topics), creates missing topics, and wires the runtime in `materializer/runtime/`, one concern
per module, each given what it uses:

- `table_reader`: global tables, restart positions, alignment of stream records to the tables;
- `stream_reader`: the consumer group, routing fetched records to partition workers;
- `rebalance`, `partition`, `transaction`, `pausing`: partitions moving, the loop of one
  partition, its Kafka transaction (exactly-once output), the bound on fetched records;
- `dead_letters`, `counters`, `topics`: table dead letters, counters, topic metadata.

Kafka may be down at start: the tables are then readable from the state as it stands, and the
materializer connects (and catches up) in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Literal

from aiokafka.errors import KafkaError

from kafka_integration import TopicMetadata, TopicSpec, check_credentials, ensure_topics
from materializer.engine import Engine
from materializer.errors import NotStarted, TopologyError
from materializer.runtime.counters import Counters
from materializer.runtime.dead_letters import DeadLetterProducer
from materializer.runtime.stream_reader import StreamReader
from materializer.runtime.table_reader import TableReader
from materializer.settings import MaterializerSettings
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
    `records_out` (joined outputs), `dead_letters`, `older_than_retention` (stream records joined
    with the oldest version kept); `rebuilt` (the state was rebuilt from the topics at start);
    `parked()` (records waiting for a row); `await lag()` for the consumer lag.
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
    def older_than_retention(self) -> int:
        return self.counters.older_than_retention

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
            self.store = await asyncio.to_thread(
                RocksState, self.settings.state_dir, cache_keys=self.settings.cache_keys
            )
        damaged = getattr(self.store, "rebuilt", False)
        self.counters.rebuilt = restore(self.store, self._fingerprint()) or damaged
        self.engine = Engine(
            self.topology,
            self.store,
            join_wait_seconds=self.settings.join_wait_seconds,
            retention_ms=int(self.settings.table_history_seconds * 1000),
        )
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
        out: dict[str, int] = {}
        for (topic, _), n in (await self.partition_lag()).items():
            out[topic] = out.get(topic, 0) + n
        return out

    async def partition_lag(self) -> dict[tuple[str, int], int]:
        """Records not yet consumed, per (logical topic, partition): every partition of the
        tables, this worker's partitions of the streams. Raises what the client raises when
        Kafka cannot be asked."""
        self._require()
        out: dict[tuple[str, int], int] = {}
        for reader in (self._tables, self._streams):
            if reader is not None:
                for where, n in (await reader.lag()).items():
                    out[where] = out.get(where, 0) + n
        return out

    def parked(self) -> int:
        """Stream records of this worker's partitions parked, waiting for a row."""
        return 0 if self._streams is None else sum(len(w.lot) for w in self._streams.workers.values())

    def assignment(self) -> set[tuple[str, int]]:
        """The stream partitions this worker owns now (logical topic, partition)."""
        return set() if self._streams is None else self._streams.assignment()
