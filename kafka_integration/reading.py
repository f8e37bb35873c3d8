"""Reading a topic whole: every record of some partitions from their beginning up to their end
offsets as of the call, then stop. What a check reads after the fact (the benchmarks' output
checker, the tests' `read_topic`); a reader that keeps up with a topic as it grows is
`TopicView`, and `python -m kafka_integration tail` prints one.

    async for record in records_to_end(consumer, tps):
        ...

The consumer is the caller's (its isolation level, fetch sizes, no group); this only assigns it
the partitions and moves it. Records written after the call began are not returned, so the read
ends even while producers go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def records_to_end(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    *,
    max_records: int | None = None,
    timeout_ms: int = 500,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of `tps` below their end offsets as of now, each partition in offset order
    (partitions interleaved as fetched)."""
    if not tps:
        return
    end = await consumer.end_offsets(list(tps))
    consumer.assign(list(tps))
    await consumer.seek_to_beginning(*tps)
    remaining = {tp for tp in tps if await consumer.position(tp) < end[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp]:
                    yield record
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
