"""The Kafka transaction of one stream partition, and its transactional producer.

- `transactional_id = {group_id}.{topic}.{partition}`: a new owner's producer fences the old one
  and aborts its open transaction.
- Outputs, stream dead letters, the parks and releases of parked records (`parked_log.py`) and
  the partition's next offset are committed in one Kafka transaction (numbered steps in
  `commit`), so `to_topic` holds each output exactly once for read_committed consumers, across
  kill -9 and rebalances, and the parked records always agree with the committed offset.
- On failure the open transaction is aborted, or its producer replaced when it cannot be; the
  partition worker rewinds the partition to the committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from materializer.settings import MaterializerSettings

log = logging.getLogger(__name__)


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
        """The record at `offset` is handled (or parked): the commit will move the partition past it."""
        self.pending = offset + 1
        self.count += 1

    def released(self) -> None:
        """A parked record was released into this transaction (the offset stays where it is)."""
        if self.pending is None:
            self.pending = self.committed
        self.count += 1

    async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
        await self.producer.send(topic, value, key=key)

    def try_append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> bool:
        """Add a record to this topic partition's open batch if it has room (no await)."""
        batch = self._batches.get((topic, partition))
        return batch is not None and batch.append(key=key, value=value, timestamp=None) is not None

    async def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
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
        # 1. hand the open record batches to the producer
        batches, self._batches = self._batches, {}
        for (topic, partition), batch in batches.items():
            if batch.record_count():
                await self.producer.send_batch(batch, topic, partition=partition)
        # 2. flush: aiokafka does not wait for in-flight sends before EndTxn
        await self.producer.flush()
        # 3. produce the partition's next offset into the transaction (none yet: only releases
        #    of records parked before any offset was committed, which cannot happen)
        if self.pending is not None:
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
