"""A small compacted topic read whole into memory: the latest value per key.

Services use it for the little they must know of other services' data without calling them:
the token revocations (every service) and the organizations and customers that exist (orders).
It reads every partition from the beginning with no consumer group, so each process has the
whole view. Kafka may be down when the service starts: the view keeps trying in the background
and `caught_up()` waits until it has read to the end the broker reports at the moment of the
call, so a caller that saw a write acknowledged by Kafka and then asks `caught_up()` sees that
write in the view (read-your-writes across services).
`ready` is set once the view has first read every partition to the end it found when it began
(and stays set): what a caller waits on before trusting that the view holds everything written
before it started.

For large tables with joins and durable state, use `materializer/` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import NotStarted
from kafka_integration.metadata import TopicMetadata

log = logging.getLogger(__name__)

Apply = Callable[[str, dict[str, Any] | None], None]


class TopicView:
    """The latest JSON object per key of one logical topic; a tombstone (or non-object) removes it."""

    def __init__(self, settings: KafkaSettings, topic: str, on_change: Apply | None = None) -> None:
        self.settings = settings
        self.topic = topic
        self.rows: dict[str, dict[str, Any]] = {}
        self._on_change = on_change
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()  # set after each fetch applied; waiters clear it
        self._whole = False  # `rows` is the view read to an end found by this consumer
        self.ready = asyncio.Event()
        # the end-offsets request being asked, and the next one (shared by callers that came since)
        self._asking: asyncio.Task[dict[TopicPartition, int]] | None = None
        self._next: asyncio.Task[dict[TopicPartition, int]] | None = None

    def get(self, key: str | int) -> dict[str, Any] | None:
        return self.rows.get(str(key))

    def __contains__(self, key: object) -> bool:
        return str(key) in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"topic-view-{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def caught_up(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until the view has read everything the broker holds at the moment of
        this call; False on timeout (Kafka down or slow)."""
        if self._task is None:
            raise NotStarted(f"the view of {self.topic!r} is not started")
        try:
            async with asyncio.timeout(timeout):
                ends: dict[TopicPartition, int] | None = None
                while True:
                    consumer = self._consumer
                    self._progress.clear()
                    try:
                        if consumer is not None and self._whole and consumer.assignment():
                            if ends is None:
                                ends = await self._ends_after_now()
                            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                                return True
                    except Exception:  # the broker went away or the view restarted: ask again
                        ends = None
                    # woken by the next fetch applied; the bound covers a view that has stopped
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await self._progress.wait()
        except TimeoutError:
            return False

    async def _ends_after_now(self) -> dict[TopicPartition, int]:
        """The broker's end offsets, asked after this call. Callers share requests: at most one
        is being asked at a time, and those who call meanwhile share the next one, asked once the
        current one has answered (its answer may predate them). Under load, one ListOffsets
        request serves many orders instead of one each."""
        if self._next is None or self._next.done():  # done: cancelled before it was sent
            self._next = asyncio.create_task(self._ask_next(), name=f"topic-view-ends-{self.topic}")
            self._next.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        shared = self._next
        try:
            return await asyncio.shield(shared)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if shared.cancelled() and task is not None and not task.cancelling():
                # the request was cancelled, not this caller: a failure it asks again after
                raise NotStarted(
                    f"the end-offsets request of the view of {self.topic!r} was cancelled"
                ) from None
            raise

    async def _ask_next(self) -> dict[TopicPartition, int]:
        if self._asking is not None:  # its outcome is its callers'; a cancellation of ours ends us
            await asyncio.wait([self._asking])
        # from here on, a new caller needs a later request: this one may already be on its way
        self._asking, self._next = self._next, None
        # the consumer reading now: the one of the caller that asked for this request may have
        # been stopped since (the view restarted or stopped), and asked, a stopped consumer
        # reconnects, a connection nobody closes
        consumer = self._consumer
        if consumer is None or not self._whole or not consumer.assignment():
            raise NotStarted(f"the view of {self.topic!r} is not reading now")
        return dict(await consumer.end_offsets(list(consumer.assignment())))

    async def _run(self) -> None:
        name = self.settings.topic(self.topic)
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                **self.settings.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
            )
            try:
                await consumer.start()
                partitions = await self._partitions(name)
                tps = [TopicPartition(name, p) for p in sorted(partitions)]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                self._whole = False
                self._consumer = consumer
                delay = 0.2
                # (Re)read into a fresh copy: until it has reached the end found now, readers keep
                # the last complete view (stale but whole), never a half-read one.
                building: dict[str, dict[str, Any]] = {}
                ends: dict[TopicPartition, int] | None = await consumer.end_offsets(tps)
                # an empty topic (or one compacted to nothing) is read as soon as it is found
                batches: dict[TopicPartition, list[Any]] = {}
                while True:
                    rows = building if ends is not None else self.rows
                    for records in batches.values():
                        for record in records:
                            self._apply(rows, record.key, record.value)
                    if ends is not None and await self._reached(consumer, ends):
                        ends = None
                        self.rows = building
                        self._whole = True
                        self.ready.set()
                    self._progress.set()
                    batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("view of %s: %r; retrying in %.1fs", name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self._consumer = None
                with contextlib.suppress(Exception):
                    await consumer.stop()

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        return all([await consumer.position(tp) >= end for tp, end in ends.items()])

    async def _partitions(self, name: str) -> set[int]:
        async with TopicMetadata(self.settings) as metadata:
            while True:  # a topic created a moment ago may take a moment to show in the metadata
                partitions = await metadata.partitions(name)
                if partitions:
                    return {tp.partition for tp in partitions}
                await asyncio.sleep(0.2)

    def _apply(self, rows: dict[str, dict[str, Any]], raw_key: bytes | None, raw_value: bytes | None) -> None:
        if raw_key is None:
            return
        key = raw_key.decode("utf-8", "replace")
        value: Any = None
        if raw_value is not None:
            try:
                value = orjson.loads(raw_value)
            except orjson.JSONDecodeError:
                log.warning("view of %s: key %s holds a value that is not JSON; ignored", self.topic, key)
                return
        if isinstance(value, dict):
            rows[key] = value
        else:
            rows.pop(key, None)
            value = None
        if self._on_change is not None:
            self._on_change(key, value)
