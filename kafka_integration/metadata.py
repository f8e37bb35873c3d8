"""Topic metadata: which partitions a topic has, asked of the broker with the admin client's
public calls (`describe_topics`). The one place the project looks it up: the materializer, the
services' topic views and the tests.

- Fresh: each call asks the broker, never a client's cache, so a topic created a moment ago is
  seen as soon as the broker answering knows it; `wait_partitions` retries until then.
- Harmless: it always describes all topics. A request naming a missing topic would make a broker
  with `auto.create.topics.enable` create it, with the broker's default partitions.
- A topic is counted only when the broker reports it without error (a topic whose leaders are
  still being elected is reported with an error and is waited for like a missing one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_integration.config import KafkaSettings
from kafka_integration.errors import TopicMissing


class TopicMetadata:
    """Partitions of topics, for as long as the `async with` block lasts (one admin client)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._admin = AIOKafkaAdminClient(**kafka.client_kwargs())

    async def __aenter__(self) -> TopicMetadata:
        try:
            await self._admin.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._admin.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._admin.close()

    async def partition_counts(self) -> dict[str, int]:
        """Every topic the broker knows now (physical name) and its number of partitions."""
        return {topic: len(ids) for topic, ids in (await self._described()).items()}

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of `topic` (a physical name), in order; [] if the broker does not know it."""
        return [TopicPartition(topic, p) for p in (await self._described()).get(topic, [])]

    async def _described(self) -> dict[str, list[int]]:
        described = await self._admin.describe_topics()  # all topics: see the module docstring
        return {
            t["topic"]: sorted(p["partition"] for p in t["partitions"])
            for t in described
            if t["error_code"] == 0 and t["partitions"]
        }

    async def wait_partitions(self, topic: str, timeout: float = 30.0) -> list[TopicPartition]:
        """The partitions of `topic`, waiting up to `timeout` seconds for a topic just created."""
        deadline = time.monotonic() + timeout
        while not (found := await self.partitions(topic)):
            if time.monotonic() > deadline:
                raise TopicMissing(f"topic {topic!r} does not exist")
            await asyncio.sleep(0.2)
        return found
