"""Errors of the publishing library.

KafkaIntegrationError        any failure of this package
├── NotStarted               a producer or relay used before start() or after stop()
├── ConfigError              the Kafka variables do not make a valid client configuration
├── EventTooLarge            an event declared in a unit of work is over the size Kafka accepts
├── NoSuchDeadLetter         the dead-lettered event asked for is not there
├── TopicMissing             a topic waited for does not exist
└── AccessRefused            the broker refused this client's TLS or SASL credentials
"""

from __future__ import annotations


class KafkaIntegrationError(Exception):
    """Any failure of kafka_integration."""


class NotStarted(KafkaIntegrationError):
    """A producer or relay was used before start() or after stop()."""


class ConfigError(KafkaIntegrationError, ValueError):
    """The Kafka variables do not make a valid client configuration."""


class EventTooLarge(KafkaIntegrationError):
    """An event is over the size limit: it could never be published, so its write is refused."""

    def __init__(self, topic: str, key: str, size: int, limit: int) -> None:
        super().__init__(
            f"the {topic} event of key {key} would be {size} bytes, over the limit of {limit} bytes"
        )
        self.topic = topic
        self.key = key
        self.size = size
        self.limit = limit


class NoSuchDeadLetter(KafkaIntegrationError, LookupError):
    """No dead-lettered event has that id."""


class TopicMissing(KafkaIntegrationError, LookupError):
    """A topic that was waited for does not exist."""


class AccessRefused(KafkaIntegrationError):
    """The broker refused this client's TLS or SASL credentials: waiting will not help."""
