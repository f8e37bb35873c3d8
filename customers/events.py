"""What each customers-service write emits: full rows on `organizations`, `customers`
and `organization_associations`, keyed by id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka_integration import Event, TopicSpec, entity_events
from kafka_integration.row_event import Kind

CUSTOMERS = "customers"
TOPICS = [TopicSpec("organizations"), TopicSpec(CUSTOMERS), TopicSpec("organization_associations")]
# The customers table's columns in their order (the events' keys), for the events PostgreSQL
# writes itself (kafka_integration.row_event).
CUSTOMER_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("id", "int"),
    ("name", "text"),
    ("last_name", "text"),
    ("email", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("organization_id", "int"),
)


def organization(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("organizations", "organization", action, row)


def customer(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events(CUSTOMERS, "customer", action, row)


def association(action: str, row: Mapping[str, Any]) -> list[Event]:
    return entity_events("organization_associations", "organization_association", action, row)
