"""The notifications tests' database pool (the service's schema, migrated) and sender pools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from notifications.mailer import SmtpSettings
from notifications.notify import Notifier
from notifications.senders import Senders
from servicekit.db import DatabaseSettings, migrate, open_pool


@pytest.fixture
async def pool(test_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    settings = DatabaseSettings.from_env(test_env, schema="notifications")
    async with open_pool(settings) as opened:
        await migrate(opened, ["notifications"], settings.schema)
        yield opened


@pytest.fixture
async def senders(pool: asyncpg.Pool, test_env: dict[str, str]) -> AsyncIterator[Callable[..., Any]]:
    started: list[Senders] = []

    async def start(notifier: Notifier | None = None, max_failures: int = 5) -> Senders:
        out = Senders(notifier or Notifier(pool, SmtpSettings.from_env(test_env)), 2, max_failures)
        await out.start()
        started.append(out)
        return out

    yield start
    for one in started:
        await one.stop()
