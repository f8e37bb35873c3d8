"""What each customers-service write emits: full rows on `organizations` and `customers`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events

TOPICS = [TopicSpec("organizations"), TopicSpec("customers")]


def organization(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("organizations", "organization", action, row)


def customer(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("customers", "customer", action, row)
