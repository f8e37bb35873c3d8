"""Failed logins slow down one (email, client address) pair, never the user everywhere: growing
delays answered 429 with Retry-After, reset by a success or by the operator's unlock command;
passwords are checked with no database connection held, so parallel logins never exhaust it.

A second client address: the test server listens on 127.0.0.1, and Linux routes all of
127.0.0.0/8 to loopback, so a client bound to 127.0.0.2 is another address."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from security.app import create_app
from security.config import Config, LoginPolicy
from servicekit.app import DB_POOL
from tests.security.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support import ROOT, wait_until

RIGHT = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
WRONG = {"email": ADMIN_EMAIL, "password": "a-guess-of-an-attacker"}
SLOW = {"LOGIN_BASE_DELAY_SECONDS": "300"}  # a delay no test outlives: Retry-After is exact


@pytest.fixture
async def slow(security_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    """The security service with a first delay of 300 s after five failures."""
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env({**security_env, **SLOW})))
    return client


@pytest.fixture
async def elsewhere() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that calls from 127.0.0.2."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as session:
        yield session


async def login_from(session: aiohttp.ClientSession, server: TestClient[Any, Any], body: Any) -> int:
    async with session.post(server.make_url("/login"), json=body) as resp:
        await resp.read()
        return resp.status


async def attempts(server: TestClient[Any, Any]) -> list[dict[str, Any]]:
    rows = await server.server.app[DB_POOL].fetch("SELECT * FROM login_attempts ORDER BY email, address")
    return [dict(r) for r in rows]


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    policy = LoginPolicy(free_failures=5, base_delay_seconds=2, max_delay_seconds=60)
    assert [policy.delay_after(n) for n in range(1, 12)] == [0, 0, 0, 0, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay_after(10_000) == 60


async def test_guesses_from_one_address_do_not_lock_the_admin_out_from_another(
    slow: TestClient[Any, Any], elsewhere: aiohttp.ClientSession
) -> None:
    for _ in range(5):
        assert (await slow.post("/login", json=WRONG)).status == 401
    refused = await slow.post("/login", json=RIGHT)  # the attacker's address waits, right password or not
    assert refused.status == 429
    assert 299 <= int(refused.headers["Retry-After"]) <= 300
    problem = await refused.json()
    assert problem["type"] == "urn:problem-type:too_many_requests"
    assert "try again in" in problem["detail"]
    assert await login_from(elsewhere, slow, RIGHT) == 201  # the admin, from their own address
    # the admin's success there does not free the attacker's address
    assert (await slow.post("/login", json=RIGHT)).status == 429
    assert [(r["address"], r["failures"]) for r in await attempts(slow)] == [("127.0.0.1", 5)]


async def test_an_unknown_email_slows_down_the_same_way(slow: TestClient[Any, Any]) -> None:
    nobody = {"email": "nobody@example.com", "password": "guess-guess"}
    for _ in range(5):
        assert (await slow.post("/login", json=nobody)).status == 401
    assert (await slow.post("/login", json=nobody)).status == 429
    assert (await slow.post("/login", json=RIGHT)).status == 201  # other emails are not affected


async def test_each_failure_past_the_limit_doubles_the_wait(
    security_env: dict[str, str], serve: Callable[..., Any]
) -> None:
    c = await serve(create_app(Config.from_env({**security_env, "LOGIN_BASE_DELAY_SECONDS": "1"})))
    for _ in range(5):
        assert (await c.post("/login", json=WRONG)).status == 401
    first = await c.post("/login", json=WRONG)
    assert first.status == 429 and first.headers["Retry-After"] == "1"

    async def let_in_again() -> bool:
        return (await c.post("/login", json=WRONG)).status == 401  # the sixth failure

    await wait_until(let_in_again)
    second = await c.post("/login", json=RIGHT)
    assert second.status == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 2


async def test_parallel_guesses_from_one_address_cannot_pass_the_limit(
    slow: TestClient[Any, Any], elsewhere: aiohttp.ClientSession
) -> None:
    answers = await asyncio.gather(
        *(slow.post("/login", json={**WRONG, "password": f"guess-{n:04}"}) for n in range(12))
    )
    assert sorted(a.status for a in answers) == [401] * 5 + [429] * 7
    assert [r["failures"] for r in await attempts(slow)] == [5]
    assert await login_from(elsewhere, slow, RIGHT) == 201


async def test_a_success_resets_the_pair(slow: TestClient[Any, Any]) -> None:
    for _ in range(4):
        assert (await slow.post("/login", json=WRONG)).status == 401
    assert (await slow.post("/login", json=RIGHT)).status == 201
    assert await attempts(slow) == []
    for _ in range(4):
        assert (await slow.post("/login", json=WRONG)).status == 401
    assert (await slow.post("/login", json=RIGHT)).status == 201


async def test_thirty_parallel_logins_succeed_with_a_pool_of_two(
    security_env: dict[str, str], serve: Callable[..., Any]
) -> None:
    env = {
        **security_env,
        "DATABASE_POOL_MIN": "1",
        "DATABASE_POOL_MAX": "2",
        "PASSWORD_HASH_CONCURRENCY": "2",
    }
    c = await serve(create_app(Config.from_env(env)))
    answers = await asyncio.gather(*(c.post("/login", json=RIGHT) for _ in range(30)))
    assert [a.status for a in answers] == [201] * 30
    assert len({(await a.json())["jwt"] for a in answers}) == 30
    assert (await c.get("/health")).status == 200


@pytest.mark.parametrize("email", [f"{ADMIN_EMAIL}\x00", "root\x00@example.com", f"{ADMIN_EMAIL}\r\nX: y"])
async def test_a_control_character_in_the_login_email_is_refused_and_counts_nothing(
    slow: TestClient[Any, Any], email: str
) -> None:
    resp = await slow.post("/login", json={"email": email, "password": ADMIN_PASSWORD})
    assert resp.status == 422
    problem = await resp.json()
    assert problem["errors"][0]["field"] == "email"
    assert "control characters" in problem["errors"][0]["problem"]
    assert await attempts(slow) == []
    assert (await slow.post("/login", json=RIGHT)).status == 201


async def test_the_operator_unlocks_an_email_with_the_cli(
    slow: TestClient[Any, Any], security_env: dict[str, str], elsewhere: aiohttp.ClientSession
) -> None:
    for _ in range(5):
        assert (await slow.post("/login", json=WRONG)).status == 401
        assert await login_from(elsewhere, slow, WRONG) == 401
    assert (await slow.post("/login", json=RIGHT)).status == 429
    assert await login_from(elsewhere, slow, RIGHT) == 429
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "security",
        "unlock",
        ADMIN_EMAIL.upper(),
        cwd=ROOT,
        env={**os.environ, **security_env, **SLOW},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == f"unlocked {ADMIN_EMAIL}: failed logins from 2 address(es) forgotten"
    assert await attempts(slow) == []
    assert (await slow.post("/login", json=RIGHT)).status == 201
    assert await login_from(elsewhere, slow, RIGHT) == 201
    # counting starts again from zero: four guesses after the unlock do not stop the admin
    for _ in range(4):
        assert (await slow.post("/login", json=WRONG)).status == 401
    assert (await slow.post("/login", json=RIGHT)).status == 201


async def test_the_unlock_cli_needs_an_email(security_env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "security",
        "unlock",
        cwd=ROOT,
        env={**os.environ, **security_env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2  # argparse's usage error
    assert "usage: python -m security unlock [-h] EMAIL" in err.decode()
    assert "required: EMAIL" in err.decode()


async def test_x_forwarded_for_is_ignored_by_default(slow: TestClient[Any, Any]) -> None:
    for n in range(5):  # a client rotating a header it writes itself is still one address
        resp = await slow.post("/login", json=WRONG, headers={"X-Forwarded-For": f"10.0.0.{n}"})
        assert resp.status == 401
    assert (await slow.post("/login", json=RIGHT, headers={"X-Forwarded-For": "10.0.0.9"})).status == 429
    assert [r["address"] for r in await attempts(slow)] == ["127.0.0.1"]


async def test_behind_a_trusted_proxy_the_last_forwarded_address_counts(
    security_env: dict[str, str], serve: Callable[..., Any]
) -> None:
    env = {**security_env, **SLOW, "LOGIN_TRUST_FORWARDED_FOR": "true"}
    c = await serve(create_app(Config.from_env(env)))
    for _ in range(5):
        resp = await c.post("/login", json=WRONG, headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.1"})
        assert resp.status == 401
    # what the client wrote before the proxy's entry changes nothing
    assert (
        await c.post("/login", json=RIGHT, headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.1"})
    ).status == 429
    assert (await c.post("/login", json=RIGHT, headers={"X-Forwarded-For": "10.0.0.2"})).status == 201
    assert (await c.post("/login", json=RIGHT, headers={"X-Forwarded-For": "not-an-ip"})).status == 201
    assert [r["address"] for r in await attempts(c)] == ["10.0.0.1"]
