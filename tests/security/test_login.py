"""Login, tokens and logout (the slowing down of failed logins: test_login_policy.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.support import Tokens, read_topic, wait_for_status


@pytest.fixture
def public_key(security_env: dict[str, str]) -> str:
    return Path(security_env["JWT_PUBLIC_KEY_FILE"]).read_text()


async def test_login_answers_201_with_a_token_the_public_key_verifies(
    security_client: TestClient[Any, Any],
    public_key: str,
    admin: dict[str, str],
    make_user: Callable[..., Any],
) -> None:
    ann = await make_user("Ann@Example.com", "ann-password-1")
    grant = {"grant": {"organization_id": 13, "role": "member"}}
    assert (await security_client.post(f"/users/{ann['id']}/grants", json=grant, headers=admin)).status == 201
    resp = await security_client.post(
        "/login", json={"email": "ANN@example.com", "password": "ann-password-1"}
    )
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"jwt", "expires_at"}
    claims = jwt.decode(
        body["jwt"],
        public_key,
        algorithms=["EdDSA"],
        audience="kafka-rails",
        issuer="security",
    )
    assert claims["sub"] == str(ann["id"])
    assert claims["email"] == "ann@example.com"
    assert claims["admin"] is False
    assert claims["orgs"] == {"13": "member"}
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 10
    assert len(claims["jti"]) == 32
    assert body["expires_at"].endswith("Z")
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]
    assert jwt.get_unverified_header(body["jwt"])["alg"] == "EdDSA"


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    security_client: TestClient[Any, Any], make_user: Callable[..., Any]
) -> None:
    await make_user("bob@example.com", "bob-password-1")
    wrong = await security_client.post("/login", json={"email": "bob@example.com", "password": "nope-nope"})
    unknown = await security_client.post("/login", json={"email": "who@example.com", "password": "nope-nope"})
    assert wrong.status == unknown.status == 401
    assert await wrong.read() == await unknown.read()
    assert (await wrong.json())["type"] == "urn:problem-type:unauthorized"
    assert "Retry-After" not in wrong.headers


async def test_a_success_forgets_earlier_failures(
    security_client: TestClient[Any, Any], make_user: Callable[..., Any]
) -> None:
    c = security_client
    await make_user("dora@example.com", "dora-password-1")
    wrong = {"email": "dora@example.com", "password": "bad-bad-bad"}
    right = {"email": "dora@example.com", "password": "dora-password-1"}
    for _ in range(2):  # the second four failures are not slowed: the success forgot the first
        for _ in range(4):
            assert (await c.post("/login", json=wrong)).status == 401
        assert (await c.post("/login", json=right)).status == 201


async def test_logout_revokes_the_token_through_the_revocations_topic(
    security_client: TestClient[Any, Any],
    kafka: KafkaSettings,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    c = security_client
    eve = await make_user("eve@example.com")
    token = await login("eve@example.com")
    claims = jwt.decode(token["Authorization"].split()[1], options={"verify_signature": False})
    assert (await c.get(f"/users/{eve['id']}", headers=token)).status == 200
    resp = await c.post("/logout", headers=token)
    assert resp.status == 204
    revocations = await read_topic(kafka, "revocations", min_count=1)
    mine = [m for m in revocations if m.key == f"jti:{claims['jti']}"]
    assert len(mine) == 1
    assert mine[0].value == {"kind": "token", "jti": claims["jti"], "exp": claims["exp"], "action": "created"}

    await wait_for_status(c, f"/users/{eve['id']}", 401, token)
    assert (await c.post("/logout", headers=token)).status == 401
    # a new login gives a new, working token
    assert (await c.get(f"/users/{eve['id']}", headers=await login("eve@example.com"))).status == 200


async def test_logout_needs_a_valid_token(security_client: TestClient[Any, Any], tokens: Tokens) -> None:
    assert (await security_client.post("/logout")).status == 401
    expired = Tokens.header(tokens.make(ttl=-60))
    assert (await security_client.post("/logout", headers=expired)).status == 401


async def test_expired_token_revocations_are_tombstoned_in_bounded_batches(
    security_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    from security import db
    from security.config import LoginPolicy
    from security.housekeeping import tidy
    from servicekit.app import DB_POOL

    app = security_client.server.app
    pool = app[DB_POOL]
    now = int(time.time())
    for n in range(3):
        await db.revoke_token(pool, f"old{n}", now - 3600)
    await db.revoke_token(pool, "live", now + 3600)
    assert await db.tombstone_expired_revocations(pool, now - 60, limit=2) == 2  # bounded
    await tidy(app, LoginPolicy())  # the background round takes the rest
    assert await pool.fetchval("SELECT array_agg(jti) FROM revoked_tokens") == ["live"]
    found = await read_topic(kafka, "revocations", min_count=7)
    by_key: dict[str | None, list[Any]] = {}
    for m in found:
        by_key.setdefault(m.key, []).append(m.value)
    for n in range(3):
        assert by_key[f"jti:old{n}"][0]["exp"] == now - 3600
        assert by_key[f"jti:old{n}"][1:] == [None]  # its tombstone, once
    assert [v["exp"] for v in by_key["jti:live"]] == [now + 3600]
