"""The loop of one stream partition: records in offset order, from fetch to commit.

For each record: align the tables to its time (`TableReader.ready`), join it with the tables'
versions as of its time (`ParkingLot.admit`), and send the outputs and dead letters into the
partition's transaction; commit after `max_batch_records` records or `commit_interval_seconds`.
`on_output` has returned before the transaction that commits the record's offset: at least once,
in order per key. With `handler_concurrency` > 1 the calls of a partition's records run
concurrently (a task each), never two of one key at once; the transaction waits for all of them
before it commits, and a failed call fails the partition (rewind) once all have ended.

A record whose row is missing at its time is parked (with the later records of its key) and the
partition goes on: the park goes into the transaction (`parked_log.py`), so the committed offset
moves past it. As the tables advance (`TableReader.aligned_time`), parked records are settled
(`ParkingLot.release`): joined, or dead-lettered (INNER) / emitted with nulls (LEFT) once the
tables are read past their time + `join_wait_seconds`; each release goes into a transaction with
its outputs. The parked records are loaded from the changelog when the worker starts.
On failure: rewind to the committed offset, abort the transaction, reload the parked records,
start again after a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from materializer.engine import Engine, Outcome
from materializer.join import JoinedStream
from materializer.parking import ParkingLot
from materializer.runtime import parked_log
from materializer.runtime.counters import Counters
from materializer.runtime.parked_log import ParkedLog
from materializer.runtime.pausing import Pausing
from materializer.runtime.table_reader import TableReader
from materializer.runtime.transaction import PartitionTransaction
from materializer.settings import MaterializerSettings
from materializer.source import Record

log = logging.getLogger(__name__)

SETTLE_INTERVAL = 0.2  # seconds between settling parked records while the tables are idle


@dataclass(frozen=True)
class Routes:
    """Where a stream partition's results go: per join, its physical output topic and whether the
    output keeps the stream record's partition; the physical dead-letter topic, if any."""

    outputs: dict[str, tuple[str, bool]]
    dead_letters: str | None
    parked: str = ""  # the physical changelog topic of parked records


class PartitionWorker:
    """One stream partition, in offset order: align the tables, join (parking if a row is
    missing), send into the partition's transaction, commit; settle parked records as the tables
    advance. On failure: rewind to the committed offset, abort, reload the parked records."""

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
        parked: ParkedLog,
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
        self._parked_topic = routes.parked
        self._parked_log = parked
        self.lot = ParkingLot()
        self._settled_at = (-1, 0.0)  # (tables' generation, monotonic time) of the last settling
        self._outputs = {
            name: (topic, tp.partition if same else None) for name, (topic, same) in routes.outputs.items()
        }
        self._first_offset: int | None = None
        self._handlers: list[asyncio.Task[None]] = []  # on_output calls running (handler_concurrency)
        self._handler_keys: set[bytes | None] = set()  # their records' keys
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
        self.queue.extend(zip(records, repeat(seen_at)))
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
            await self._load_parked()
            await self._loop()
        except ProducerFenced:
            log.warning("%s:%s: fenced by a newer owner; stopping", self.tp.topic, self.tp.partition)
            await self._forget_handlers(cancel=False)
        except asyncio.CancelledError:
            await self._forget_handlers(cancel=True)
            await self._recover()
            raise
        except Exception:
            log.exception("%s:%s: processing failed; will resume from the committed offset", *self.tp)
            await self._forget_handlers(cancel=False)
            await self._recover()

    async def _load_parked(self) -> None:
        self.lot = ParkingLot()
        self.lot.restore(await self._parked_log.load(self.logical, self.tp.partition))
        if len(self.lot):
            log.info("%s:%s: %d parked records loaded", *self.tp, len(self.lot))

    async def _loop(self) -> None:
        settings = self.settings
        tables = self.tables
        txn = self.txn
        queue = self.queue
        max_batch, interval = settings.max_batch_records, settings.commit_interval_seconds
        while not self._stopping:
            if len(self.lot) and self._settle_due():
                await self._settle()
            if not queue:
                # Idle: commit, but not sooner than commit_interval after the transaction began,
                # so sparse records (one every few ms) share a commit instead of paying one each.
                young = settings.commit_interval_seconds - (time.monotonic() - txn.started)
                self._wake.clear()
                if txn.active and young > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), young)
                    continue
                await self._commit()
                if not queue and not self._stopping:
                    idle = SETTLE_INTERVAL if len(self.lot) else None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), idle)
                continue
            raw, seen_at = queue[0]
            if self.next_offset is not None and raw.offset < self.next_offset:
                queue.popleft()  # a redelivery below what this worker has already done
                continue
            record = Record(self.logical, raw.partition, raw.offset, raw.timestamp, raw.key, raw.value)
            if not tables.ready_fast(self.needs, record.timestamp, seen_at):
                await tables.ready(self.needs, record.timestamp, seen_at)
            outcome = self.lot.admit(self.engine, record, self._aligned)
            if not txn.active:
                await txn.begin()
            if outcome is None:
                key, value = parked_log.encode(record)
                await txn.append(self._parked_topic, self.tp.partition, key, value)
            elif not self._emit_now(record, outcome):
                await self._emit(record, outcome)
            queue.popleft()
            self.counters.records_in += 1
            self.next_offset = record.offset + 1
            txn.done(record.offset)
            if txn.count >= max_batch or time.monotonic() - txn.started >= interval:
                await self._commit()
            self.pausing.resume_if_drained(self.tp, len(queue))
        await self._commit()

    async def _commit(self) -> None:
        """Commit the open transaction once the `on_output` calls of its records have returned."""
        await self._handled()
        await self.txn.commit()

    async def _commit_if_due(self) -> None:
        txn = self.txn
        if (
            txn.count >= self.settings.max_batch_records
            or time.monotonic() - txn.started >= self.settings.commit_interval_seconds
        ):
            await self._commit()

    async def _handle(self, spec: JoinedStream, output: dict[str, Any], record: Record) -> None:
        """Call the join's `on_output`: awaited here, or (handler_concurrency > 1) started as a
        task after the running calls of this record's key, if any, have returned."""
        assert spec.on_output is not None
        if self.settings.handler_concurrency == 1:
            await spec.on_output(output, record.source())
            return
        if record.key in self._handler_keys or len(self._handlers) >= self.settings.handler_concurrency:
            await self._handled()
        self._handlers.append(asyncio.ensure_future(spec.on_output(output, record.source())))
        self._handler_keys.add(record.key)

    async def _handled(self) -> None:
        """Wait for the running `on_output` calls; the first failure raises once all have ended."""
        if not self._handlers:
            return
        tasks, self._handlers = self._handlers, []
        self._handler_keys.clear()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _forget_handlers(self, *, cancel: bool) -> None:
        """After a failure: let the running `on_output` calls end (`cancel`: stop them), their
        outcomes dropped; their records are handled again from the committed offset."""
        tasks, self._handlers = self._handlers, []
        self._handler_keys.clear()
        for task in tasks if cancel else ():
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _aligned(self) -> int:
        return self.tables.aligned_time(self.needs)

    def _settle_due(self) -> bool:
        generation, at = self._settled_at
        return generation != self.tables.generation or time.monotonic() - at >= SETTLE_INTERVAL

    async def _settle(self) -> None:
        """Release the parked records the tables now settle, into the transaction, key by key."""
        self._settled_at = (self.tables.generation, time.monotonic())
        released = self.lot.release(self.engine, self._aligned())
        if not released:
            return
        txn = self.txn
        if not txn.active:
            await txn.begin()
        for record, outcome in released:
            await self._emit(record, outcome)
            await txn.append(self._parked_topic, self.tp.partition, parked_log.release_key(record), None)
            txn.released()
        await self._commit_if_due()

    def _emit_now(self, record: Record, outcome: Outcome) -> bool:
        """The common case without an await: one output, no dead letter, no callback, kept in
        the stream record's partition, and room in the open record batch. False: nothing was
        done, `_emit` does it."""
        if outcome.dead or len(outcome.emits) != 1:
            return False
        spec, output = outcome.emits[0]
        route = self._outputs.get(spec.name)
        if route is None or route[1] is None or spec.on_output is not None:
            return False
        if not self.txn.try_append(route[0], route[1], record.key, orjson.dumps(output)):
            return False
        self.counters.older_than_retention += outcome.too_old
        self.counters.records_out += 1
        return True

    async def _emit(self, record: Record, outcome: Outcome) -> None:
        txn = self.txn
        self.counters.older_than_retention += outcome.too_old
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
                await self._handle(spec, output, record)

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
