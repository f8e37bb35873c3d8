"""Topic setup and metadata: create what is missing with its partitions and cleanup policy;
look up a topic's partitions (the one place that asks the cluster for topic metadata)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kafka_integration.config import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic. Entity topics are compacted: each event carries the full row."""

    name: str
    partitions: int = 3
    compacted: bool = True
    replication_factor: int | None = None  # None: KafkaSettings.replication_factor
    config: dict[str, str] = field(default_factory=dict)

    def new_topic(self, settings: KafkaSettings) -> NewTopic:
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if settings.min_insync_replicas > 1:  # else the broker's default (1), as on a single node
            config["min.insync.replicas"] = str(settings.min_insync_replicas)
        config.update(self.config)
        return NewTopic(
            name=settings.topic(self.name),
            num_partitions=self.partitions,
            replication_factor=self.replication_factor or settings.replication_factor,
            topic_configs=config,
        )


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s.new_topic(settings) for s in specs if settings.topic(s.name) not in existing]
        if not missing:
            return []
        try:
            await admin.create_topics(missing)
        except TopicAlreadyExistsError:
            pass  # another service created it in the meantime
        names = [t.name for t in missing]
        log.info("created topics %s", names)
        return names
    finally:
        await admin.close()


async def topic_partitions(settings: KafkaSettings, name: str) -> set[int]:
    """The partition numbers of the (physical) topic `name` as the cluster reports them now; empty
    if it does not exist. Asks for every topic's metadata, so the question never creates it on a
    broker with `auto.create.topics.enable`."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        for topic in await admin.describe_topics():
            if topic["topic"] == name and not topic["error_code"]:
                return {p["partition"] for p in topic["partitions"]}
        return set()
    finally:
        await admin.close()
