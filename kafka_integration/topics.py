"""Topic setup: create what is missing with its partitions and cleanup policy."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from kafka_integration.config import KafkaSettings

log = logging.getLogger(__name__)

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}\Z")


def is_topic_name(name: str) -> bool:
    """Whether Kafka accepts `name` as a topic (its legal characters, at most 249, not . or ..)."""
    return bool(_TOPIC_NAME.match(name)) and name not in {".", ".."}


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
        wanted: dict[str, TopicSpec] = {}
        for spec in specs:  # a topic named twice (a table's source also read as a stream): the first
            wanted.setdefault(settings.topic(spec.name), spec)  # (Kafka refuses a duplicate name)
        missing = [spec.new_topic(settings) for name, spec in wanted.items() if name not in existing]
        if not missing:
            return []
        try:
            response = await admin.create_topics(missing)
        except TopicAlreadyExistsError:
            return []  # another service created it in the meantime
        names = []
        for name, code, *detail in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                continue
            if code:  # e.g. an ACL lets another principal create it: its owner or an admin will
                log.warning("topic %s not created: %s %s", name, for_code(code).__name__, detail[:1])
                continue
            names.append(name)
        if names:
            log.info("created topics %s", names)
        return names
    finally:
        await admin.close()
