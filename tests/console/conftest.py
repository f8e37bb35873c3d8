"""The console's tests: the whole system's variables (as tests/system), the console's pool, and
the worker running in this process."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from console.app import create_app
from console.config import Config, OperationsSettings
from console.db import console_pool
from customers import events
from kafka_integration import KafkaSettings, TopicMetadata, ensure_topics, new_producer
from notifications.config import WorkerConfig
from notifications.worker import running_worker
from security.app import create_app as security_app
from security.config import Config as SecurityConfig
from tests.support import base_url, unique


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


ADMIN = ("root@example.com", "root-password-0")
NO_WORKER = "http://127.0.0.1:9"  # nothing listens there
ServeConsole = Callable[..., Awaitable[TestClient[Any, Any]]]
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture
async def security(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    env = {**test_env, "ADMIN_EMAIL": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1]}
    client: TestClient[Any, Any] = await serve(security_app(SecurityConfig.from_env(env)))
    return client


@pytest.fixture
def serve_console(
    test_env: dict[str, str], serve: Callable[..., Any], security: TestClient[Any, Any]
) -> ServeConsole:
    """Start a console that signs people in through `security`; keyword arguments override its variables
    (WORKER_URLS: no worker by default, the flow says it cannot read it)."""

    async def start(**env: str) -> TestClient[Any, Any]:
        variables = {
            **test_env,
            "SECURITY_URL": base_url(security),
            "WORKER_URLS": NO_WORKER,
            **env,
        }
        client: TestClient[Any, Any] = await serve(create_app(Config.from_env(variables)))
        return client

    return start


@pytest.fixture
async def console(serve_console: ServeConsole) -> TestClient[Any, Any]:
    return await serve_console()


async def csrf_of(client: TestClient[Any, Any], path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    found = CSRF.search(await resp.text())
    assert found is not None
    return found.group(1)


async def sign_in(client: TestClient[Any, Any], email: str, password: str) -> Any:
    token = await csrf_of(client, "/login")
    return await client.post(
        "/login", data={"csrf": token, "email": email, "password": password}, allow_redirects=False
    )


async def produce_organizations(kafka: KafkaSettings, records: Iterable[tuple[str, int, Any]]) -> None:
    """(key, partition, value) records on `organizations`, each on the partition given, the
    value as JSON (the project's topics made first)."""
    await ensure_topics(kafka, events.TOPICS)
    async with TopicMetadata(kafka) as metadata:
        await metadata.wait_partitions(kafka.topic("organizations"))
    producer = new_producer(kafka)
    await producer.start()
    try:
        for key, partition, value in records:
            await producer.send(
                kafka.topic("organizations"),
                json.dumps(value).encode(),
                key=key.encode(),
                partition=partition,
            )
        await producer.flush()
    finally:
        await producer.stop()
