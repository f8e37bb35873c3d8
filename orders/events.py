"""What each orders-service write emits: the full order or invoice, items included, keyed by id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events

TOPICS = [TopicSpec("orders"), TopicSpec("invoices")]
# Read, not written: what the orders service knows of the customers service's data.
KNOWN_TOPICS = [TopicSpec("organizations"), TopicSpec("customers"), TopicSpec("organization_associations")]


def order(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("orders", "order", action, row)


def invoice(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("invoices", "invoice", action, row)
