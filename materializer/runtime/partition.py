"""The loop of one stream partition: records in offset order, from fetch to commit.

For each record: align the tables to its time (`TableReader.ready`), decide the joins
(`Engine.decide`), and send the outputs and dead letters into the partition's transaction; commit
after `max_batch_records` records or `commit_interval_seconds`. `on_output` is awaited before the
transaction that commits the record's offset: at least once, in order. A record whose row is
still missing waits (this partition waits; the others go on) up to `join_wait_seconds`, then is
dead-lettered (INNER) or emitted with nulls (LEFT); no transaction is held open while it waits.
On failure: rewind to the committed offset, abort the transaction, start again after a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from materializer.engine import Engine, Outcome
from materializer.runtime.counters import Counters
from materializer.runtime.pausing import Pausing
from materializer.runtime.table_reader import TableReader
from materializer.runtime.transaction import PartitionTransaction
from materializer.settings import MaterializerSettings
from materializer.source import Record

log = logging.getLogger(__name__)


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
