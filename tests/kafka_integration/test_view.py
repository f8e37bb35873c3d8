"""TopicView against the real broker: `caught_up()` sees every write acknowledged before the
call, also when many callers share the broker's end-offset requests (one in flight at a time,
the callers that came meanwhile sharing the next)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from kafka_integration import KafkaSettings, TopicSpec, TopicView, ensure_topics
from tests.support import wait_until


@asynccontextmanager
async def _view_and_producer(kafka: KafkaSettings) -> AsyncIterator[tuple[TopicView, AIOKafkaProducer]]:
    """A started view of `customers`, caught up, and a producer to write to it."""
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        assert await view.caught_up(30)
        yield view, producer
    finally:
        await producer.stop()
        await view.stop()


async def test_concurrent_callers_share_end_offset_requests_and_each_sees_what_was_written_before_it(
    kafka: KafkaSettings,
) -> None:
    async with _view_and_producer(kafka) as (view, producer):
        consumer: Any = view._consumer
        asked = 0
        ask = consumer.end_offsets

        async def counted(partitions: Any) -> Any:
            nonlocal asked
            asked += 1
            return await ask(partitions)

        consumer.end_offsets = counted

        async def write_then_check(n: int) -> bool:
            await producer.send_and_wait(kafka.topic("customers"), b'{"id": %d}' % n, key=str(n).encode())
            return await view.caught_up(30) and view.get(n) == {"id": n}

        seen = await asyncio.gather(*(write_then_check(n) for n in range(200)))
        assert all(seen)
        assert asked < 200  # shared: each caller would otherwise have asked once


async def test_a_caller_that_gives_up_does_not_break_the_shared_request(kafka: KafkaSettings) -> None:
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    try:
        assert await view.caught_up(30)
        impatient = [asyncio.create_task(view.caught_up(30)) for _ in range(20)]
        await asyncio.sleep(0)
        for task in impatient[::2]:
            task.cancel()
        results = await asyncio.gather(*impatient, return_exceptions=True)
        assert all(r is True for r in results[1::2])
        assert await view.caught_up(30)
    finally:
        await view.stop()


class SlowAnswers:
    """The consumer's end-offset requests, each sent to the real broker at once and its answer
    held back until `answer` is set (a slow network): what each request found when it was sent."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.ask = consumer.end_offsets
        self.answer = asyncio.Event()
        self.sent: list[dict[Any, int]] = []
        self.on_stopped = 0  # requests sent on this consumer after it was stopped
        consumer.end_offsets = self

    async def __call__(self, partitions: Any) -> Any:
        self.on_stopped += self.consumer._closed
        ends = await self.ask(partitions)
        self.sent.append(ends)
        await self.answer.wait()
        return ends


async def test_a_caller_that_writes_while_a_request_is_answered_is_not_given_that_answer(
    kafka: KafkaSettings,
) -> None:
    """Read-your-writes: a shared answer from a request sent before the write would let the
    caller return before the view holds what it wrote."""
    async with _view_and_producer(kafka) as (view, producer):
        slow = SlowAnswers(view._consumer)
        first = asyncio.create_task(view.caught_up(30))
        await wait_until(lambda: _true(len(slow.sent) == 1))  # sent and answered, the answer held
        await producer.send_and_wait(kafka.topic("customers"), b'{"id": 1}', key=b"1")
        writer = asyncio.create_task(view.caught_up(30))
        await asyncio.sleep(0.2)  # the writer's call is made and waits
        slow.answer.set()
        assert await writer and view.get(1) == {"id": 1}
        assert await first
        assert len(slow.sent) == 2 and sum(slow.sent[1].values()) == sum(slow.sent[0].values()) + 1


async def test_a_request_shared_after_the_view_stopped_is_not_sent_on_its_stopped_consumer(
    kafka: KafkaSettings,
) -> None:
    """Asked, a stopped consumer reconnects to the broker (a connection nobody closes) and
    answers for a view that no longer reads: the next request is asked of the consumer reading
    when it is sent, and fails if none is (its callers ask again, then time out)."""
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    assert await view.caught_up(30)
    slow = SlowAnswers(view._consumer)
    first = asyncio.create_task(view.caught_up(1))
    await wait_until(lambda: _true(len(slow.sent) == 1))
    second = asyncio.create_task(view.caught_up(1))  # shares the next request, sent after the first
    await wait_until(lambda: _true(view._next is not None))
    await view.stop()
    slow.answer.set()
    await asyncio.gather(first, second)
    assert not await second
    assert slow.on_stopped == 0 and len(slow.sent) == 1


async def test_the_next_request_cancelled_while_it_waits_for_the_current_one_is_never_sent(
    kafka: KafkaSettings,
) -> None:
    """(The loop's shutdown cancels it: it must end, not go on to ask a broker that may be away
    for the request's whole timeout.) Nor may it stay the request later callers share, nor cancel
    the callers waiting for it: they ask again."""
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    try:
        assert await view.caught_up(30)
        slow = SlowAnswers(view._consumer)
        first = asyncio.create_task(view.caught_up(30))
        await wait_until(lambda: _true(len(slow.sent) == 1))
        waiting = asyncio.create_task(view.caught_up(30))
        await wait_until(lambda: _true(view._next is not None))
        shared = view._next
        assert shared is not None
        shared.cancel()
        slow.answer.set()
        assert await first
        await asyncio.wait([shared])
        assert shared.cancelled() and len(slow.sent) == 1
        # its caller is not cancelled with it: it asks again, and so do the calls after it
        assert await waiting and await view.caught_up(30)
    finally:
        await view.stop()


async def _true(value: bool) -> bool:
    return value


async def test_a_broker_error_reaches_every_caller_sharing_the_request_and_the_next_calls_ask_again(
    kafka: KafkaSettings,
) -> None:
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    try:
        assert await view.caught_up(30)
        consumer: Any = view._consumer
        ask = consumer.end_offsets
        outcomes: list[str] = []

        async def once_refused(partitions: Any) -> Any:  # the connection drops under the first
            if not outcomes:
                outcomes.append("refused")
                raise KafkaConnectionError("connection reset by the broker")
            outcomes.append("answered")
            return await ask(partitions)

        consumer.end_offsets = once_refused
        sharing = [asyncio.create_task(view._ends_after_now()) for _ in range(5)]
        results = await asyncio.gather(*sharing, return_exceptions=True)
        assert all(isinstance(r, KafkaConnectionError) for r in results)
        assert all(await asyncio.gather(*(view.caught_up(30) for _ in range(5))))
        assert outcomes == ["refused", "answered"]
    finally:
        await view.stop()
