"""What an event is: topic, key = entity id as text, value = full row + action, metadata headers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from kafka_integration.encoding import dumps

SCHEMA_VERSION = "1"
ACTIONS = ("created", "updated", "destroyed")


def encode(value: Mapping[str, Any] | None) -> bytes | None:
    """JSON bytes of a value; None stays None (a tombstone). Decimals become strings, exactly."""
    if value is None:
        return None
    return dumps(value)


@dataclass(frozen=True)
class Event:
    """One message to publish. `value=None` is a tombstone (compaction forgets the key)."""

    topic: str
    key: str
    value: Mapping[str, Any] | None
    type: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    schema_version: str = SCHEMA_VERSION

    def metadata(self) -> dict[str, str]:
        """What goes in the Kafka headers: event type, id, time and schema version."""
        return {
            "event_type": self.type,
            "event_id": self.id,
            "event_time": self.time.isoformat(),
            "schema_version": self.schema_version,
            "content_type": "application/json",
        }

    def headers(self) -> list[tuple[str, bytes]]:
        return kafka_headers(self.metadata())

    @cached_property
    def encoded(self) -> bytes | None:
        """The value's bytes, encoded once (for the size check and the outbox)."""
        return encode(self.value)

    def size(self) -> int:
        """The record's size as the producer counts it against its request limit."""
        return record_size(self.key, self.encoded, self.headers())


def record_size(key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """Upper bound of a record's size in a batch (aiokafka's own estimate, the one it compares
    with max_request_size)."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key.encode(), value, headers)
    return size


def kafka_headers(metadata: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in metadata.items()]


def entity_event(topic: str, entity: str, action: str, row: Mapping[str, Any]) -> Event:
    """The event of one entity write: `organization_created` on `organizations`, keyed by id,
    whose value is the full row plus `action`, so the seed's ksqlDB statements read it as is."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    return Event(
        topic=topic,
        key=str(row["id"]),
        value={**row, "action": action},
        type=f"{entity}_{action}",
    )


def entity_events(topic: str, entity: str, action: str, row: Mapping[str, Any]) -> list[Event]:
    """Like entity_event; a `destroyed` event is followed by a tombstone so compaction can drop
    the key once every consumer has seen the destroyed row."""
    event = entity_event(topic, entity, action, row)
    if action != "destroyed":
        return [event]
    return [event, Event(topic=topic, key=event.key, value=None, type=f"{entity}_tombstone")]
