"""Users and grants: CRUD, events on `users`, `grants` and `revocations`, who may do what."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from security.app import create_app
from security.config import Config
from tests.security.conftest import ADMIN_EMAIL
from tests.support import Tokens, assert_rejects_bad_tokens, read_topic, wait_for_status, write_signing_keys

USER_FIELDS = {"id", "email", "admin", "created_at", "updated_at"}


async def test_users_crud_with_lower_case_emails_and_events(
    security_client: TestClient[Any, Any], admin: dict[str, str], kafka: KafkaSettings
) -> None:
    c = security_client
    created = await c.post(
        "/users", json={"user": {"email": "  Fay@Example.COM ", "password": "fay-password"}}, headers=admin
    )
    assert created.status == 201
    fay = await created.json()
    assert set(fay) == USER_FIELDS
    assert fay["email"] == "fay@example.com" and fay["admin"] is False
    flat = await c.post(
        "/users", json={"email": "gus@example.com", "password": "gus-password"}, headers=admin
    )
    assert flat.status == 201
    gus = await flat.json()
    dup = await c.post(
        "/users", json={"user": {"email": "FAY@example.com", "password": "x" * 8}}, headers=admin
    )
    assert dup.status == 409 and (await dup.json())["type"] == "urn:problem-type:conflict"

    assert (await (await c.get(f"/users/{fay['id']}", headers=admin)).json()) == fay
    listed = (await (await c.get("/users", headers=admin)).json())["items"]
    assert [u["email"] for u in listed] == [ADMIN_EMAIL, "fay@example.com", "gus@example.com"]

    changed = await c.put(f"/users/{fay['id']}", json={"user": {"email": "Fay2@Example.com"}}, headers=admin)
    assert changed.status == 200
    assert (await changed.json())["email"] == "fay2@example.com"
    taken = await c.patch(f"/users/{gus['id']}", json={"email": "fay2@example.com"}, headers=admin)
    assert taken.status == 409
    assert (await c.delete(f"/users/{gus['id']}", headers=admin)).status == 204
    assert (await c.get(f"/users/{gus['id']}", headers=admin)).status == 404
    assert (await c.delete(f"/users/{gus['id']}", headers=admin)).status == 404

    users = await read_topic(kafka, "users", min_count=6)
    seen: dict[str | None, list[Any]] = {}  # per key: the topic has 3 partitions, no order across keys
    for m in users:
        seen.setdefault(m.key, []).append(m.value and m.value["action"])
    assert seen == {
        "1": ["created"],
        str(fay["id"]): ["created", "updated"],
        str(gus["id"]): ["created", "destroyed", None],  # None: the tombstone
    }
    assert all(set(m.value) == USER_FIELDS | {"action"} for m in users if m.value)
    revocations = {m.key: m.value for m in await read_topic(kafka, "revocations", min_count=2)}
    assert revocations[f"user:{fay['id']}"]["kind"] == "user"  # email changed: old tokens carry the old one
    assert revocations[f"user:{gus['id']}"]["user_id"] == gus["id"]  # deleted


async def test_grants_create_list_delete_emit_events_and_revoke_old_tokens(
    security_client: TestClient[Any, Any],
    admin: dict[str, str],
    kafka: KafkaSettings,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    c = security_client
    hal = await make_user("hal@example.com")
    old = await login("hal@example.com")
    assert (await c.get(f"/users/{hal['id']}", headers=old)).status == 200
    resp = await c.post(
        f"/users/{hal['id']}/grants", json={"grant": {"organization_id": 13, "role": "member"}}, headers=admin
    )
    assert resp.status == 201
    grant = await resp.json()
    assert grant["user_id"] == hal["id"] and grant["organization_id"] == 13 and grant["role"] == "member"
    flat = await c.post(
        f"/users/{hal['id']}/grants", json={"organization_id": 14, "role": "viewer"}, headers=admin
    )
    assert flat.status == 201
    listed = (await (await c.get(f"/users/{hal['id']}/grants", headers=admin)).json())["items"]
    assert [(g["organization_id"], g["role"]) for g in listed] == [(13, "member"), (14, "viewer")]

    # the token made before the grant change stops working; a new login carries the grants
    await wait_for_status(c, f"/users/{hal['id']}", 401, old)
    new = await login("hal@example.com")
    claims = jwt.decode(new["Authorization"].split()[1], options={"verify_signature": False})
    assert claims["orgs"] == {"13": "member", "14": "viewer"}
    assert (await c.get(f"/users/{hal['id']}", headers=new)).status == 200

    assert (await c.delete(f"/users/{hal['id']}/grants/14", headers=admin)).status == 204
    assert (await c.delete(f"/users/{hal['id']}/grants/14", headers=admin)).status == 404
    assert (await c.get("/users/999/grants", headers=admin)).status == 404
    grants = await read_topic(kafka, "grants", min_count=4)
    per_key: dict[str | None, list[Any]] = {}  # per key: the topic has 3 partitions
    for m in grants:
        per_key.setdefault(m.key, []).append(
            (m.value and m.value["organization_id"], m.value and m.value["action"])
        )
    assert sorted(per_key.values(), key=len) == [
        [(13, "created")],
        [(14, "created"), (14, "destroyed"), (None, None)],
    ]
    assert set(next(m.value for m in grants if m.value)) == {
        "id", "user_id", "organization_id", "role", "created_at", "updated_at", "action"
    }  # fmt: skip
    revocations = [
        m.value for m in await read_topic(kafka, "revocations", min_count=3) if m.key == f"user:{hal['id']}"
    ]
    assert len(revocations) == 3  # two grants given, one taken away
    assert all(
        r["kind"] == "user" and r["action"] == "created" and r["user_id"] == hal["id"] for r in revocations
    )
    assert revocations[1]["not_before"] <= claims["iat"] <= revocations[2]["not_before"]


async def test_a_user_reads_and_changes_themselves_but_not_others_nor_admin(
    security_client: TestClient[Any, Any], make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    c = security_client
    ivy = await make_user("ivy@example.com")
    jon = await make_user("jon@example.com")
    ivy_token = await login("ivy@example.com")
    assert (await c.get(f"/users/{ivy['id']}", headers=ivy_token)).status == 200
    assert (await c.get(f"/users/{jon['id']}", headers=ivy_token)).status == 403
    assert (await c.put(f"/users/{jon['id']}", json={"email": "x@y.io"}, headers=ivy_token)).status == 403
    promote = await c.put(f"/users/{ivy['id']}", json={"user": {"admin": True}}, headers=ivy_token)
    assert promote.status == 403
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/users", {"user": {"email": "k@example.com", "password": "k-password"}}),
        ("DELETE", f"/users/{jon['id']}", None),
        ("POST", f"/users/{ivy['id']}/grants", {"grant": {"organization_id": 1, "role": "member"}}),
        ("GET", f"/users/{ivy['id']}/grants", None),
        ("DELETE", f"/users/{ivy['id']}/grants/1", None),
    ]:
        resp = await c.request(method, path, json=body, headers=ivy_token)
        assert resp.status == 403, (method, path)
        assert (await resp.json())["type"] == "urn:problem-type:forbidden"
    changed = await c.put(
        f"/users/{ivy['id']}", json={"user": {"password": "ivy-new-password"}}, headers=ivy_token
    )
    assert changed.status == 200

    # a new password revokes the tokens made before it
    await wait_for_status(c, f"/users/{ivy['id']}", 401, ivy_token)
    assert (
        await c.get(f"/users/{ivy['id']}", headers=await login("ivy@example.com", "ivy-new-password"))
    ).status == 200


async def test_the_last_administrator_cannot_be_removed(
    security_client: TestClient[Any, Any], admin: dict[str, str]
) -> None:
    assert (await security_client.delete("/users/1", headers=admin)).status == 409
    assert (await security_client.put("/users/1", json={"admin": False}, headers=admin)).status == 409


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/users", None),
        ("POST", "/users", {"user": {"email": "x@example.com", "password": "x-password"}}),
        ("PUT", "/users/1", {"user": {"admin": False}}),
        ("DELETE", "/users/1", None),
        ("POST", "/users/1/grants", {"grant": {"organization_id": 1, "role": "member"}}),
    ],
)
async def test_bad_tokens_get_401_and_change_nothing(
    security_client: TestClient[Any, Any],
    tokens: Tokens,
    tmp_path: Path,
    kafka: KafkaSettings,
    method: str,
    path: str,
    body: Any,
) -> None:
    other = write_signing_keys(tmp_path / "other")["JWT_PRIVATE_KEY_FILE"]
    await assert_rejects_bad_tokens(security_client, method, path, tokens, other, body)
    users = await read_topic(kafka, "users", min_count=1)
    assert [m.value and m.value["email"] for m in users] == [ADMIN_EMAIL]
    assert await read_topic(kafka, "grants", timeout=0) == []


BAD_USER_BODIES: list[tuple[bytes | Any, int, str]] = [
    (b'{"user": {"email": "a@b.io", "password": ', 400, ""),
    (b"", 400, ""),
    (b"\xff\xfe", 400, ""),
    ([1, 2], 422, "body"),
    ({"user": {"password": "long-enough"}}, 422, "user.email"),
    ({"user": {"email": "l@example.com"}}, 422, "user.password"),
    ({"user": {"email": "l@example.com", "password": "short"}}, 422, "user.password"),
    ({"user": {"email": "l@example.com", "password": 12345678}}, 422, "user.password"),
    ({"user": {"email": "not-an-email", "password": "long-enough"}}, 422, "user.email"),
    ({"user": {"email": "l@example.com", "password": "long-enough", "admin": "yes"}}, 422, "user.admin"),
    ({"user": {"email": "l@example.com", "password": "long-enough", "role": "x"}}, 422, "user.role"),
    ({"email": 5, "password": "long-enough"}, 422, "user.email"),
    ({"user": "l@example.com"}, 422, "user"),
    ({"user": {"email": "l@example.com", "password": "p" * 100_000}}, 413, ""),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_USER_BODIES)
async def test_bad_user_bodies_get_a_4xx_naming_the_field_and_write_nothing(
    security_client: TestClient[Any, Any],
    admin: dict[str, str],
    kafka: KafkaSettings,
    body: Any,
    status: int,
    field: str,
) -> None:
    c = security_client
    if isinstance(body, bytes):
        resp = await c.post("/users", data=body, headers={**admin, "Content-Type": "application/json"})
    else:
        resp = await c.post("/users", json=body, headers=admin)
    assert resp.status == status, await resp.text()
    answer = await resp.json()
    if field:
        assert field in [f["field"] for f in answer["errors"]], answer
    assert "long-enough" not in str(answer)
    assert [u["email"] for u in (await (await c.get("/users", headers=admin)).json())["items"]] == [
        ADMIN_EMAIL
    ]
    assert len(await read_topic(kafka, "users", min_count=1)) == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users/1", {"user": {}}, "user"),
        ("/users/1", {"user": {"password": "short"}}, "user.password"),
        ("/users/1", {"user": {"email": None}}, "user"),
        ("/users/1/grants", {"grant": {"organization_id": 1, "role": "owner"}}, "grant.role"),
        ("/users/1/grants", {"grant": {"organization_id": "1", "role": "member"}}, "grant.organization_id"),
        ("/users/1/grants", {"grant": {"organization_id": 0, "role": "member"}}, "grant.organization_id"),
        ("/users/1/grants", {"role": "member"}, "grant.organization_id"),
    ],
)
async def test_bad_update_and_grant_bodies_name_the_field(
    security_client: TestClient[Any, Any],
    admin: dict[str, str],
    kafka: KafkaSettings,
    path: str,
    body: Any,
    field: str,
) -> None:
    method = "PUT" if path == "/users/1" else "POST"
    resp = await security_client.request(method, path, json=body, headers=admin)
    assert resp.status == 422
    assert field in [f["field"] for f in (await resp.json())["errors"]]
    assert len(await read_topic(kafka, "users", min_count=1)) == 1
    assert await read_topic(kafka, "grants", timeout=0) == []


async def test_bad_login_bodies_get_4xx(security_client: TestClient[Any, Any]) -> None:
    c = security_client
    assert (
        await c.post("/login", data=b"{not json", headers={"Content-Type": "application/json"})
    ).status == 400
    missing = await c.post("/login", json={"email": "a@b.io"})
    assert missing.status == 422 and (await missing.json())["errors"][0]["field"] == "password"
    assert (await c.post("/login", json={"email": ["a"], "password": "p"})).status == 422


async def test_the_first_admin_comes_from_the_environment_only_when_no_user_exists(
    test_env: dict[str, str], serve: Callable[..., Any], kafka: KafkaSettings
) -> None:
    bare = await serve(create_app(Config.from_env(test_env)))
    assert (
        await bare.post("/login", json={"email": "boss@example.com", "password": "boss-password"})
    ).status == 401
    first = await serve(
        create_app(
            Config.from_env(
                {**test_env, "ADMIN_EMAIL": "Boss@Example.com", "ADMIN_PASSWORD": "boss-password"}
            )
        )
    )
    resp = await first.post("/login", json={"email": "boss@example.com", "password": "boss-password"})
    assert resp.status == 201
    claims = jwt.decode((await resp.json())["jwt"], options={"verify_signature": False})
    assert claims["admin"] is True
    again = await serve(
        create_app(
            Config.from_env({**test_env, "ADMIN_EMAIL": "other@example.com", "ADMIN_PASSWORD": "other-pass"})
        )
    )
    assert (
        await again.post("/login", json={"email": "other@example.com", "password": "other-pass"})
    ).status == 401
    users = (await (await again.get("/users", headers=Tokens.header((await resp.json())["jwt"]))).json())[
        "items"
    ]
    assert [u["email"] for u in users] == ["boss@example.com"]
    assert [m.value and m.value["email"] for m in await read_topic(kafka, "users", min_count=1)] == [
        "boss@example.com"
    ]
