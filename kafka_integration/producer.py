"""The direct produce call (the gem's `Producer.produce`): straight to Kafka, no outbox."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import NotStarted
from kafka_integration.events import Event, encode


def new_producer(settings: KafkaSettings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer (acks=all, no duplicates or reordering on retry within a session)."""
    options: dict[str, object] = {
        **settings.client_kwargs(),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 10_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class Producer:
    """Publishes events directly. For writes that must not lose their events, use the outbox."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = new_producer(self._settings)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def produce(self, events: Iterable[Event]) -> None:
        """Send the events and wait until Kafka has acknowledged all of them."""
        if self._producer is None:
            raise NotStarted("Producer.produce called before start()")
        futures = [
            await self._producer.send(
                self._settings.topic(e.topic), value=encode(e.value), key=e.key.encode(), headers=e.headers()
            )
            for e in events
        ]
        for future in futures:
            await future
