"""Session-wide real infrastructure, and per-test isolation by schema and topic prefix."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kafka_integration import KafkaSettings
from servicekit.auth import REVOCATIONS
from tests.support import (
    TEST_PREFIX,
    Tokens,
    delete_topics,
    duplicates,
    local_kafka,
    start_infra,
    unique,
    wait_until,
    write_signing_keys,
)

# The secured suite needs its own broker and runs with its own command, `make test-secured`.
collect_ignore = [] if os.environ.get("KAFKA_SECURITY") == "sasl_ssl" else ["secured"]

# Suites with a command of their own, collected only when asked for (`make test` leaves them out).
OPTIONAL_SUITES = {
    "faults": "the three-node fault suite; `make test-faults`",
    "browser": "pages opened in a real browser (Chromium); `make test-browser`",
    "contract": "Schemathesis over every declared operation of the four APIs; `make test-contract`",
}
HERE = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, what in OPTIONAL_SUITES.items():
        parser.addoption(f"--{name}", action="store_true", help=f"also collect tests/{name} ({what})")
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the tests marked `slow` (kills, restarts and long runs; `make test-slow`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked `slow` run only with --slow (`make test-slow`): they are where `make test`
    would spend a third of its time, and they have a command of their own, as the suites above."""
    if config.getoption("--slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    name = collection_path.name
    if collection_path.parent == HERE and name in OPTIONAL_SUITES and not config.getoption(f"--{name}"):
        return True
    return None


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    env = start_infra()
    if local_kafka(env):  # the project's own broker: sweep what earlier runs' tests left there
        asyncio.run(delete_topics(env, lambda name: TEST_PREFIX.match(name) is not None, settle=180))
    return env


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_signing_keys(tmp_path_factory.mktemp("jwt"))


@pytest.fixture
def tokens(signing_keys: dict[str, str]) -> Tokens:
    return Tokens(signing_keys["JWT_PRIVATE_KEY_FILE"])


@pytest.fixture
async def test_env(
    infra: dict[str, str], signing_keys: dict[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, str]]:
    """Variables for one test: its own database schema and its own topic prefix. At its end, no
    email of the test (its MESSAGE_ID_DOMAIN) may have reached the SMTP sink twice, unless the
    test is marked `crash_window` (it is about that window and bounds the copies itself)."""
    schema = unique("t_")
    env = {
        **infra,
        **signing_keys,
        "DATABASE_SCHEMA": schema,
        "KAFKA_TOPIC_PREFIX": f"{schema}.",
        "EVENT_DELIVERY_TIMEOUT": "5",
        "MESSAGE_ID_DOMAIN": f"{schema}.test",
    }
    yield env
    if "SMTP_SINK_DIR" in env and request.node.get_closest_marker("crash_window") is None:
        doubled = duplicates(env, env["MESSAGE_ID_DOMAIN"])
        assert not doubled, f"emails received more than once: {doubled}"
    conn = await asyncpg.connect(infra["DATABASE_URL"])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    await delete_topics(env, lambda name: name.startswith(env["KAFKA_TOPIC_PREFIX"]))


@pytest.fixture
def kafka(test_env: dict[str, str]) -> KafkaSettings:
    return KafkaSettings.from_env(test_env, client_id="tests")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Any]]:
    """Start an application on a real port; returns a client (sending `token`, when given, as
    its bearer token). A service that checks tokens answers 503 until it has read the
    revocations: unless `ready=False`, wait until its /health says it has. Stopped at the end
    of the test."""
    clients: list[TestClient[Any, Any]] = []

    async def start(
        app: web.Application, token: str | None = None, ready: bool = True
    ) -> TestClient[Any, Any]:
        headers = Tokens.header(token) if token else None
        client = TestClient(TestServer(app, host="127.0.0.1"), headers=headers)
        await client.start_server()
        clients.append(client)
        if ready and REVOCATIONS in app:

            async def revocations_read() -> bool:
                return (await client.get("/health")).status == 200

            await wait_until(revocations_read)
        return client

    yield start
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def customers_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    """The customers service, called with an administrator's token."""
    from customers.app import create_app
    from customers.config import Config

    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client


@pytest.fixture
async def orders_client(
    test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> TestClient[Any, Any]:
    """The orders service, called with an administrator's token."""
    from orders.app import create_app
    from orders.config import Config

    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client
