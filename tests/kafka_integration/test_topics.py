"""Topic setup against the broker: what is missing is created once, however often it is named."""

from __future__ import annotations

from kafka_integration import KafkaSettings, TopicMetadata, TopicSpec, ensure_topics
from tests.support import PATIENCE


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
    # waited for: a topic created a moment ago can be reported with an error (its leaders still
    # being elected) or not at all: described at once, it could show no partitions
    async with TopicMetadata(kafka) as metadata:
        partitions = await metadata.wait_partitions(kafka.topic("people"), timeout=PATIENCE)
    assert len(partitions) == 2
    assert await ensure_topics(kafka, [TopicSpec("people"), TopicSpec("people")]) == []
