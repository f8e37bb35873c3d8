"""Topic setup against the broker: what is missing is created once, however often it is named."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from kafka_integration import KafkaSettings, TopicSpec, ensure_topics


async def test_a_topic_named_twice_is_created_once_with_the_first_spec(kafka: KafkaSettings) -> None:
    """The worker names `customers` as a table's source and as a stream's: Kafka refused the
    request with 'Duplicate topic name' and the worker stopped when it created the topics itself."""
    created = await ensure_topics(
        kafka,
        [
            TopicSpec("people", partitions=2, compacted=True),
            TopicSpec("people", partitions=3, compacted=False),
        ],
    )
    assert created == [kafka.topic("people")]
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([kafka.topic("people")])
        assert len(described["partitions"]) == 2
    finally:
        await admin.close()
    assert await ensure_topics(kafka, [TopicSpec("people"), TopicSpec("people")]) == []
