from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from kafka_integration import KafkaSettings, OutboxRelay
from servicekit.db import DatabaseSettings, connect, migrate, open_pool


@pytest.fixture
async def pool(test_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's schema, with the outbox tables."""
    db = DatabaseSettings.from_env(test_env, schema="unused")
    async with open_pool(db) as pool:
        await migrate(pool, ["kafka_integration"], db.schema)
        yield pool


@pytest.fixture
def make_relay(
    kafka: KafkaSettings, test_env: dict[str, str], pool: asyncpg.Pool
) -> Callable[..., OutboxRelay]:
    """A relay of the test's outbox (not started)."""

    def make(**options: Any) -> OutboxRelay:
        db = DatabaseSettings.from_env(test_env, schema="unused")
        return OutboxRelay(
            kafka, pool, schema=db.schema, connect=lambda: connect(db), idle_poll_seconds=0.2, **options
        )

    return make
