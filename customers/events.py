"""What each customers-service write emits: full rows on `organizations`, `customers`
and `organization_associations`, keyed by id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events

TOPICS = [TopicSpec("organizations"), TopicSpec("customers"), TopicSpec("organization_associations")]


def organization(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("organizations", "organization", action, row)


def customer(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("customers", "customer", action, row)


def association(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("organization_associations", "organization_association", action, row)
