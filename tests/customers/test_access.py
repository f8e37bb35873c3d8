"""Tokens on the customers service: 401 without a valid one, 403 without access to the data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from customers.app import create_app
from customers.config import Config
from kafka_integration import Event, KafkaSettings, Producer
from tests.support import Tokens, assert_rejects_bad_tokens, read_topic, wait_for_status, write_signing_keys


@pytest.fixture
async def anonymous(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)))
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/organizations", None),
        ("POST", "/organizations", {"organization": {"name": "X"}}),
        ("GET", "/customers/1", None),
        ("DELETE", "/customers/1", None),
        ("POST", "/organizations/1/organization_associations", {"invite": {"customer_id": 1}}),
    ],
)
async def test_bad_tokens_get_401_and_change_nothing(
    anonymous: TestClient[Any, Any],
    tokens: Tokens,
    tmp_path: Path,
    kafka: KafkaSettings,
    method: str,
    path: str,
    body: Any,
) -> None:
    other = write_signing_keys(tmp_path / "other")["JWT_PRIVATE_KEY_FILE"]
    await assert_rejects_bad_tokens(anonymous, method, path, tokens, other, body)
    assert await read_topic(kafka, "organizations", timeout=0) == []


async def test_health_and_openapi_need_no_token(anonymous: TestClient[Any, Any]) -> None:
    assert (await anonymous.get("/health")).status == 200
    assert (await anonymous.get("/openapi.json")).status == 200


async def test_organization_data_needs_a_grant_for_that_organization(
    anonymous: TestClient[Any, Any], tokens: Tokens
) -> None:
    admin = Tokens.header(tokens.admin())
    org_a = await (
        await anonymous.post("/organizations", json={"organization": {"name": "A"}}, headers=admin)
    ).json()
    org_b = await (
        await anonymous.post("/organizations", json={"organization": {"name": "B"}}, headers=admin)
    ).json()
    member = Tokens.header(tokens.make(user_id=7, orgs={org_a["id"]: "member"}))
    viewer = Tokens.header(tokens.make(user_id=8, orgs={org_a["id"]: "viewer"}))

    assert (await anonymous.get(f"/organizations/{org_a['id']}", headers=member)).status == 200
    denied = await anonymous.get(f"/organizations/{org_b['id']}", headers=member)
    assert denied.status == 403
    assert (await denied.json())["type"] == "urn:problem-type:forbidden"
    listed = (await (await anonymous.get("/organizations", headers=member)).json())["items"]
    assert [o["id"] for o in listed] == [org_a["id"]]
    assert len((await (await anonymous.get("/organizations", headers=admin)).json())["items"]) == 2

    rename = {"organization": {"name": "A2"}}
    assert (await anonymous.put(f"/organizations/{org_a['id']}", json=rename, headers=viewer)).status == 403
    assert (await anonymous.put(f"/organizations/{org_b['id']}", json=rename, headers=member)).status == 403
    assert (await anonymous.put(f"/organizations/{org_a['id']}", json=rename, headers=member)).status == 200
    assert (await anonymous.post("/organizations", json=rename, headers=member)).status == 403
    assert (await anonymous.delete(f"/organizations/{org_a['id']}", headers=member)).status == 403
    customer = {"customer": {"name": "J", "last_name": "D", "email": "j@d.io"}}
    assert (await anonymous.post("/customers", json=customer, headers=viewer)).status == 403
    assert (await anonymous.post("/customers", json=customer, headers=member)).status == 201
    invite = {"invite": {"customer_id": 1}}
    path = f"/organizations/{org_b['id']}/organization_associations"
    assert (await anonymous.post(path, json=invite, headers=member)).status == 403
    assert (await anonymous.get(path, headers=member)).status == 403
    unchanged = await (await anonymous.get(f"/organizations/{org_b['id']}", headers=admin)).json()
    assert unchanged["name"] == "B"


async def test_a_revoked_token_stops_working(
    anonymous: TestClient[Any, Any], tokens: Tokens, kafka: KafkaSettings
) -> None:
    token = tokens.make(user_id=5, admin=True)
    other = tokens.make(user_id=6, admin=True)
    assert (await anonymous.get("/customers", headers=Tokens.header(token))).status == 200
    jti, exp = token_id(token), token_exp(token)
    producer = Producer(kafka)
    await producer.start()
    try:
        await producer.produce(
            [Event("revocations", f"jti:{jti}", {"kind": "token", "jti": jti, "exp": exp}, "token_revoked")]
        )

        await wait_for_status(anonymous, "/customers", 401, Tokens.header(token))
        assert (await anonymous.get("/customers", headers=Tokens.header(other))).status == 200
        # every token of user 6 issued before now is revoked (grants changed, password changed)
        await producer.produce(
            [
                Event(
                    "revocations",
                    "user:6",
                    {"kind": "user", "user_id": 6, "not_before": 2**40},
                    "user_revoked",
                )
            ]
        )

        await wait_for_status(anonymous, "/customers", 401, Tokens.header(other))
    finally:
        await producer.stop()


def token_id(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def token_exp(token: str) -> int:
    import jwt

    return int(jwt.decode(token, options={"verify_signature": False})["exp"])
