"""The console's tests: the whole system's variables (as tests/system), the console's pool, and
the worker running in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from console.config import OperationsSettings
from console.db import console_pool
from notifications.config import WorkerConfig
from notifications.worker import running_worker
from tests.support import unique


@pytest.fixture
def test_env(test_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **test_env,
        "MATERIALIZER_STATE_DIR": str(tmp_path / "state"),
        "CONSUMER_GROUP": unique("notifications-"),
        "JOIN_WAIT_SECONDS": "1",
        "WORKER_PORT": "0",
    }


@pytest.fixture
def ops(test_env: dict[str, str]) -> OperationsSettings:
    return OperationsSettings.from_env(test_env)


@pytest.fixture
async def pool(ops: OperationsSettings) -> AsyncIterator[asyncpg.Pool]:
    async with console_pool(ops) as opened:
        yield opened


@pytest.fixture
async def worker(test_env: dict[str, str]) -> AsyncIterator[Any]:
    async with running_worker(WorkerConfig.from_env(test_env)) as (materializer, notifier):
        yield materializer, notifier
