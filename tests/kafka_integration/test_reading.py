"""records_to_end reads a topic whole as it stands when the read begins: every record of every
partition once, and not the records written while it reads (so it ends while producers go on)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kafka_integration import KafkaSettings, TopicMetadata, TopicSpec, ensure_topics
from kafka_integration.reading import records_to_end


async def test_a_read_returns_what_stood_at_its_start_not_what_came_after(
    kafka: KafkaSettings,
) -> None:
    await ensure_topics(kafka, [TopicSpec("readings", partitions=3, compacted=False), TopicSpec("none")])
    name = kafka.topic("readings")
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(name, b"before %d" % i, key=b"%d" % (i % 7))
        async with TopicMetadata(kafka) as metadata:
            tps = await metadata.wait_partitions(name)
            empty = await metadata.wait_partitions(kafka.topic("none"))
        read = []
        async for record in records_to_end(consumer, tps, max_records=4):
            if not read:  # once the read has begun, more is written: it is not read
                for i in range(10):
                    await producer.send_and_wait(name, b"after %d" % i, key=b"%d" % i)
            read.append(record.value)
        assert sorted(read) == sorted(b"before %d" % i for i in range(30))
        assert [r async for r in records_to_end(consumer, empty)] == []
        assert [r async for r in records_to_end(consumer, [])] == []
    finally:
        await consumer.stop()
        await producer.stop()
