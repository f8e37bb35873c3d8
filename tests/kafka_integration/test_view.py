"""TopicView against the real broker: `caught_up()` sees every write acknowledged before the
call, also when many callers share the broker's end-offset requests (one in flight at a time,
the callers that came meanwhile sharing the next)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from kafka_integration import KafkaSettings, TopicSpec, TopicView, ensure_topics


async def test_concurrent_callers_share_end_offset_requests_and_each_sees_what_was_written_before_it(
    kafka: KafkaSettings,
) -> None:
    await ensure_topics(kafka, [TopicSpec("customers")])
    view = TopicView(kafka, "customers")
    await view.start()
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        assert await view.caught_up(30)
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
    finally:
        await producer.stop()
        await view.stop()


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
