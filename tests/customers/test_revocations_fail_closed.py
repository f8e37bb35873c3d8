"""Revocation fails closed (servicekit.auth; the customers service stands for all four): until a
service has read the `revocations` topic to its end once, a request with a token gets 503, never
an answer; the first request served after that already knows every revocation.

Kafka "down at start" is a bootstrap address with nothing listening; "back" is a forwarder
opened on that address to the real broker (which then tells the client its own address)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from kafka_integration import KafkaSettings, Producer
from security.events import token_revocation_expired, token_revoked
from servicekit.app import DB_POOL
from servicekit.auth import EXPIRY_MARGIN_SECONDS, REVOCATIONS, Revocations
from tests.support import Tokens, wait_until


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def forwarder(port: int, to: str) -> AsyncIterator[None]:
    """Listen on 127.0.0.1:`port` and pipe every connection to `to` (host:port)."""
    host, _, to_port = to.rpartition(":")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(to_port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


@pytest.fixture
def kafka_away(test_env: dict[str, str]) -> dict[str, str]:
    """The test's variables with a bootstrap address nothing listens on."""
    return {**test_env, "BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"}


async def test_with_kafka_unreachable_a_valid_token_gets_503_never_200(
    kafka_away: dict[str, str], serve: Callable[..., Any], tokens: Tokens
) -> None:
    c: TestClient[Any, Any] = await serve(create_app(Config.from_env(kafka_away)), ready=False)
    admin = Tokens.header(tokens.admin())
    for path in ("/organizations", "/customers", "/organizations/1"):
        resp = await c.get(path, headers=admin)
        assert resp.status == 503, path
        assert resp.headers["Retry-After"] == "2"
        problem = await resp.json()
        assert problem["type"] == "urn:problem-type:unavailable"
        assert "revocations" in problem["detail"]
    created = await c.post("/organizations", json={"organization": {"name": "X"}}, headers=admin)
    assert created.status == 503  # and nothing was written
    assert await c.server.app[DB_POOL].fetchval("SELECT count(*) FROM organizations") == 0
    health = await c.get("/health")
    assert health.status == 503
    assert (await health.json())["status"] == "starting"
    assert (await health.json())["revocations"] == "not read yet"
    assert (await c.get("/openapi.json")).status == 200
    assert (await c.get("/metrics")).status == 200
    assert (await c.get("/organizations")).status == 401  # no token: still 401, not 503
    assert (await c.get("/organizations", headers=Tokens.header("not-a-jwt"))).status == 401


async def test_once_kafka_is_back_the_first_answer_already_refuses_a_logged_out_token(
    kafka_away: dict[str, str],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    serve: Callable[..., Any],
    tokens: Tokens,
) -> None:
    logged_out, fine = tokens.make(user_id=7, admin=True), tokens.make(user_id=8, admin=True)
    claims = jwt.decode(logged_out, options={"verify_signature": False})
    producer = Producer(kafka)
    await producer.start()
    try:
        await producer.produce([token_revoked(claims["jti"], claims["exp"])])
    finally:
        await producer.stop()
    c: TestClient[Any, Any] = await serve(create_app(Config.from_env(kafka_away)), ready=False)
    statuses: list[int] = []

    async def served() -> bool:
        resp = await c.get("/customers", headers=Tokens.header(logged_out))
        statuses.append(resp.status)
        return resp.status != 503

    assert not await served()
    assert (await c.get("/customers", headers=Tokens.header(fine))).status == 503
    port = int(kafka_away["BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    async with forwarder(port, test_env["BOOTSTRAP_SERVERS"]):
        await wait_until(served, interval=0.1)
        assert set(statuses[:-1]) == {503}
        assert statuses[-1] == 401  # the first request served: the revocation is known
        assert (await c.get("/customers", headers=Tokens.header(fine))).status == 200
        assert (await c.get("/health")).status == 200


def test_expired_tokens_are_forgotten_and_tombstones_remove_entries() -> None:
    now = time.time()
    state = Revocations()
    state.on_change("jti:old", {"kind": "token", "exp": int(now) - EXPIRY_MARGIN_SECONDS - 1})
    state.on_change("jti:live", {"kind": "token", "exp": int(now) + 600})
    state.on_change("jti:soon", {"kind": "token", "exp": int(now) + 10})
    assert set(state.tokens) == {"live", "soon"}  # long expired: never kept
    assert state.prune(now + 10 + EXPIRY_MARGIN_SECONDS + 1) == 1
    assert set(state.tokens) == {"live"}
    tombstone = token_revocation_expired("live")
    assert tombstone.key == "jti:live" and tombstone.value is None
    state.on_change(tombstone.key, None)
    assert state.tokens == {}


async def test_a_ready_app_has_its_revocations(customers_client: TestClient[Any, Any]) -> None:
    assert customers_client.server.app[REVOCATIONS].ready
