"""The Python counterpart of the seed's `rails_kafka_integration` gem, with an outbox.

- `Producer.produce(events)`: the direct call.
- `unit_of_work(pool)` + `uow.emit(event)`: a write declares its events in its transaction
  (the `Eventeable` concern); they are stored in the outbox table and published after commit.
- `RowEventWrite`: a write of one row and its event in one statement (one round trip).
- `OutboxRelay`: publishes the outbox in order with an idempotent producer, survives outages;
  moves an event Kafka can never take to `kafka_outbox_dead` and goes on.
- `python -m kafka_integration dead-letters list|republish ID|discard ID`: the dead letters.
- `deliver_messages(timeout)`: the middleware that waits for a request's events before answering.
- `TopicView`: a small compacted topic read whole into memory (what a service knows of others).
- `check_credentials(settings)`: at start, a refused password or CA stops the process clearly.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from kafka_integration.access import check_credentials, refusal
from kafka_integration.config import KafkaSettings
from kafka_integration.errors import (
    AccessRefused,
    ConfigError,
    EventTooLarge,
    KafkaIntegrationError,
    NoSuchDeadLetter,
    NotStarted,
    TopicMissing,
)
from kafka_integration.events import Event, encode, entity_event, entity_events
from kafka_integration.metadata import TopicMetadata
from kafka_integration.producer import Producer, new_producer
from kafka_integration.topics import TopicSpec, ensure_topics
from kafka_integration.view import TopicView

if TYPE_CHECKING:
    from kafka_integration.middleware import RELAY, deliver_messages, relay_context
    from kafka_integration.outbox import UnitOfWork, collect_pending, unit_of_work, write_outbox
    from kafka_integration.relay import OutboxRelay
    from kafka_integration.row_event import RowEventWrite

# The outbox, its relay and the middleware need aiohttp and asyncpg (half a second of imports);
# a process that only consumes and produces (the materializer, the benchmarks) never loads them.
_LAZY = {
    "RELAY": "middleware",
    "deliver_messages": "middleware",
    "relay_context": "middleware",
    "UnitOfWork": "outbox",
    "collect_pending": "outbox",
    "unit_of_work": "outbox",
    "write_outbox": "outbox",
    "OutboxRelay": "relay",
    "RowEventWrite": "row_event",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"kafka_integration.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "RELAY",
    "AccessRefused",
    "ConfigError",
    "Event",
    "EventTooLarge",
    "KafkaIntegrationError",
    "KafkaSettings",
    "NoSuchDeadLetter",
    "NotStarted",
    "OutboxRelay",
    "Producer",
    "RowEventWrite",
    "TopicMetadata",
    "TopicMissing",
    "TopicSpec",
    "TopicView",
    "UnitOfWork",
    "check_credentials",
    "collect_pending",
    "deliver_messages",
    "encode",
    "ensure_topics",
    "entity_event",
    "entity_events",
    "new_producer",
    "refusal",
    "relay_context",
    "unit_of_work",
    "write_outbox",
]
