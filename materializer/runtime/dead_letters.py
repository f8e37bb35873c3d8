"""Dead letters outside any transaction: the records a table refuses.

Each letter is counted, logged, and sent to the dead-letter topic with an idempotent producer
(acks=all); `send` returns only once every letter is acknowledged, so the table reader, which
moves its offsets after, never loses one. Stream dead letters go in their partition's transaction
instead (`transaction.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from materializer.deadletter import DeadLetter
from materializer.runtime.counters import Counters
from materializer.settings import MaterializerSettings

log = logging.getLogger(__name__)


class DeadLetterProducer:
    """Dead letters of table records, sent outside any transaction and awaited until acknowledged
    (the table reader moves its offsets only after). Stream dead letters go in their partition's
    transaction instead."""

    def __init__(self, settings: MaterializerSettings, counters: Counters) -> None:
        self._kafka = settings.kafka
        self._topic = settings.dead_letter_topic
        self._counters = counters
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._kafka.client_kwargs(), enable_idempotence=True, acks="all")
        try:
            await self._producer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Count and log each letter; send them to the dead-letter topic, if any, and wait for all."""
        self._counters.dead_letters += len(letters)
        for letter in letters:
            log.warning("dead letter from %s: %s", letter.record.topic, letter.reason)
        if not self._topic or self._producer is None:
            return
        name = self._kafka.topic(self._topic)
        futures = [await self._producer.send(name, d.encode(), key=d.record.key) for d in letters]
        await asyncio.gather(*futures)
