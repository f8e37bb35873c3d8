"""API keys: issued by the security service to a user (secret shown once, stored hashed, listed
without it, revocable), accepted as HTTP Basic by the notifications API with that user's grants,
and refused there within a second of their revocation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import BasicAuth
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer

from kafka_integration import KafkaSettings
from notifications.app import create_app
from notifications.config import Config
from security.db import MAX_API_KEYS_PER_USER
from servicekit.apikeys import ApiKeys
from servicekit.auth import BASIC_AUTH
from tests.support import PATIENCE, Message, read_topic, wait_for_status, wait_until

KEY_FIELDS = {"id", "key", "user_id", "description", "created_at"}


@pytest.fixture
async def notifications_client(test_env: dict[str, str], serve: Callable[..., Any]) -> TestClient[Any, Any]:
    """The notifications API, called with no credentials unless a request gives them."""
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)))
    return client


@pytest.fixture
def issue_key(security_client: TestClient[Any, Any]) -> Callable[..., Any]:
    async def issue(user_id: int, headers: dict[str, str], description: str = "") -> dict[str, Any]:
        resp = await security_client.post(
            f"/users/{user_id}/api_keys", json={"api_key": {"description": description}}, headers=headers
        )
        assert resp.status == 201, await resp.text()
        issued: dict[str, Any] = await resp.json()
        return issued

    return issue


@pytest.fixture
def accepted_key(
    make_user: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
    notifications_client: TestClient[Any, Any],
) -> Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]:
    """A new user (an administrator unless told) and a key issued to them, once the notifications
    API accepts it (it reads keys from the api_keys topic): (user, key)."""

    async def make(
        email: str = "ops@example.com", is_admin: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        user = await make_user(email, is_admin=is_admin)
        key = await issue_key(user["id"], admin)
        await wait_for_status(notifications_client, "/tables", 200, basic(key))
        return user, key

    return make


def basic(key: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    return {"Authorization": BasicAuth(key["key"], secret or key["secret"]).encode()}


async def key_records(kafka: KafkaSettings, key: dict[str, Any]) -> list[Message]:
    """What the api_keys topic holds of `key`, oldest first."""
    return [m for m in await read_topic(kafka, "api_keys") if m.key == key["key"]]


async def test_a_key_is_issued_listed_without_its_secret_used_and_revoked_everywhere_within_a_second(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    admin: dict[str, str],
    make_user: Callable[..., Any],
    issue_key: Callable[..., Any],
    test_env: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    ops = await make_user("ops@example.com", is_admin=True)
    key = await issue_key(ops["id"], admin, "ksql client")
    assert set(key) == KEY_FIELDS | {"secret"}
    assert key["user_id"] == ops["id"] and key["description"] == "ksql client"
    assert ":" not in key["key"] + key["secret"] and len(key["secret"]) >= 40

    listed = await (await security_client.get(f"/users/{ops['id']}/api_keys", headers=admin)).json()
    assert listed["items"] == [{k: key[k] for k in KEY_FIELDS}]  # never the secret

    conn = await asyncpg.connect(test_env["DATABASE_URL"])
    try:
        stored = await conn.fetchrow(
            f'SELECT * FROM "{test_env["DATABASE_SCHEMA"]}".api_keys WHERE id = $1', key["id"]
        )
    finally:
        await conn.close()
    assert key["secret"] not in str(dict(stored))
    assert stored["secret_sha256"] == hashlib.sha256(key["secret"].encode()).hexdigest()
    published = await key_records(kafka, key)
    assert key["secret"] not in str([m.value for m in published])

    # the API reads the key from the topic
    await wait_for_status(notifications_client, "/tables", 200, basic(key))
    bearer = await notifications_client.get("/tables", headers=admin)
    assert bearer.status == 200  # Bearer tokens still work beside keys

    resp = await security_client.delete(f"/users/{ops['id']}/api_keys/{key['id']}", headers=admin)
    assert resp.status == 204

    # how soon is a figure, not a bound: bench.key_revocation
    await wait_for_status(notifications_client, "/tables", 401, basic(key))
    again = await security_client.delete(f"/users/{ops['id']}/api_keys/{key['id']}", headers=admin)
    assert again.status == 404
    assert (await (await security_client.get(f"/users/{ops['id']}/api_keys", headers=admin)).json())[
        "items"
    ] == []


async def test_a_user_manages_their_own_keys_but_not_another_users(
    security_client: TestClient[Any, Any],
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
) -> None:
    ann = await make_user("ann@example.com")
    bob = await make_user("bob@example.com")
    ann_token, bob_token = await login("ann@example.com"), await login("bob@example.com")
    ann_key = await issue_key(ann["id"], ann_token)
    flat = await security_client.post(f"/users/{bob['id']}/api_keys", json={}, headers=bob_token)
    assert flat.status == 201  # `{}`: no description
    c = security_client
    assert (await c.get(f"/users/{ann['id']}/api_keys", headers=bob_token)).status == 403
    assert (await c.post(f"/users/{ann['id']}/api_keys", json={}, headers=bob_token)).status == 403
    assert (await c.delete(f"/users/{ann['id']}/api_keys/{ann_key['id']}", headers=bob_token)).status == 403
    # bob's own path does not reach ann's key either
    assert (await c.delete(f"/users/{bob['id']}/api_keys/{ann_key['id']}", headers=bob_token)).status == 404
    mine = await (await c.get(f"/users/{ann['id']}/api_keys", headers=ann_token)).json()
    assert [k["key"] for k in mine["items"]] == [ann_key["key"]]
    assert (await c.get(f"/users/{ann['id']}/api_keys", headers=admin)).status == 200


@pytest.mark.parametrize(
    "description",
    ["x" * 201, "bell\x07here", "nul\x00", 5, None],
    ids=["too long", "control", "nul", "number", "null"],
)
async def test_a_bad_description_is_refused_naming_the_field(
    security_client: TestClient[Any, Any], admin: dict[str, str], description: Any
) -> None:
    resp = await security_client.post(
        "/users/1/api_keys", json={"api_key": {"description": description}}, headers=admin
    )
    assert resp.status == 422, await resp.text()
    assert "description" in await resp.text()
    listed = await (await security_client.get("/users/1/api_keys", headers=admin)).json()
    assert listed["items"] == []


async def test_wrong_secrets_and_malformed_basic_headers_are_refused_with_401(
    notifications_client: TestClient[Any, Any],
    accepted_key: Callable[..., Any],
) -> None:
    _, key = await accepted_key()
    raw = f"{key['key']}:{key['secret']}"
    cases = {
        "wrong secret": basic(key, key["secret"][:-1] + ("A" if key["secret"][-1] != "A" else "B")),
        "unknown key": basic({"key": "KRNOSUCHKEY", "secret": key["secret"]}),
        "no colon": {"Authorization": "Basic " + base64.b64encode(raw.replace(":", "").encode()).decode()},
        "empty secret": {"Authorization": "Basic " + base64.b64encode(f"{key['key']}:".encode()).decode()},
        "empty key": {"Authorization": "Basic " + base64.b64encode(f":{key['secret']}".encode()).decode()},
        "not base64": {"Authorization": "Basic !!!not-base64!!!"},
        "not utf-8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        "nothing": {"Authorization": "Basic "},
        "huge": {
            "Authorization": "Basic " + base64.b64encode(("K" * 6000 + ":" + "s" * 100).encode()).decode()
        },
        "control characters": {
            "Authorization": "Basic " + base64.b64encode(f"{key['key']}\x00:\n".encode()).decode()
        },
        "secret with a trailing newline": {
            "Authorization": "Basic " + base64.b64encode((raw + "\n").encode()).decode()
        },
    }
    for name, headers in cases.items():
        resp = await notifications_client.get("/tables", headers=headers)
        assert resp.status == 401, f"{name}: {resp.status}"
        assert (await resp.json())["type"] == "urn:problem-type:unauthorized", name
        assert key["secret"] not in await resp.text()


async def test_a_non_administrators_key_acts_with_that_users_grants(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    admin: dict[str, str],
    accepted_key: Callable[..., Any],
) -> None:
    ann, key = await accepted_key("ann@example.com", is_admin=False)
    mail = {"code": "customer_created", "to": "x@example.com", "options": {}}
    refused = await notifications_client.post("/mails", json=mail, headers=basic(key))
    assert refused.status == 403  # a mail for no organization needs an administrator
    assert (await refused.json())["type"] == "urn:problem-type:forbidden"
    for path in ("/info", "/ksql"):  # ksqlDB's endpoints are the administrators'
        answer = await notifications_client.request(
            "GET" if path == "/info" else "POST", path, json={"ksql": "SHOW TABLES;"}, headers=basic(key)
        )
        assert answer.status == 403
        assert (await answer.json())["@type"] == "generic_error"

    # made an administrator, the key acts as one (the key is published again with the user)
    promoted = await security_client.put(f"/users/{ann['id']}", json={"user": {"admin": True}}, headers=admin)
    assert promoted.status == 200

    async def admitted() -> bool:
        resp = await notifications_client.post("/mails", json={**mail, "code": "no_such"}, headers=basic(key))
        return resp.status == 422  # past the admin check: the template is unknown

    await wait_until(admitted)


async def test_deleting_the_user_revokes_their_keys(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    admin: dict[str, str],
    accepted_key: Callable[..., Any],
) -> None:
    ops, key = await accepted_key()
    assert (await security_client.delete(f"/users/{ops['id']}", headers=admin)).status == 204

    # how soon is a figure, not a bound: bench.key_revocation
    await wait_for_status(notifications_client, "/tables", 401, basic(key))


async def test_a_key_revoked_while_its_user_changes_is_never_published_again(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    admin: dict[str, str],
    test_env: dict[str, str],
    kafka: KafkaSettings,
    accepted_key: Callable[..., Any],
) -> None:
    """A user change republishes the user's keys; a revocation that commits between that
    change's read of the keys and its commit must not be overtaken by the republished key (the
    tombstone would come first and the key would be accepted again, for ever: it is no longer
    in the database, so it cannot even be revoked again). Both writes are held at the outbox
    (a lock on it) until both are under way, the revocation first."""
    ops, key = await accepted_key()
    schema = test_env["DATABASE_SCHEMA"]
    blocker = await asyncpg.connect(test_env["DATABASE_URL"])
    watcher = await asyncpg.connect(test_env["DATABASE_URL"])

    def waiting(count: int) -> Callable[[], Any]:
        async def check() -> bool:
            found = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            return int(found) >= count

        return check

    try:
        held = blocker.transaction()
        await held.start()
        await blocker.execute(f'LOCK TABLE "{schema}".kafka_outbox IN EXCLUSIVE MODE')
        revoke = asyncio.create_task(
            security_client.delete(f"/users/{ops['id']}/api_keys/{key['id']}", headers=admin)
        )
        await wait_until(waiting(1))  # the revocation has deleted the key and waits to write its event
        grant = asyncio.create_task(
            security_client.post(
                f"/users/{ops['id']}/grants",
                json={"grant": {"organization_id": 5, "role": "member"}},
                headers=admin,
            )
        )
        await wait_until(waiting(2))
        await held.rollback()
        assert (await revoke).status == 204
        assert (await grant).status == 201
    finally:
        await blocker.close()
        await watcher.close()

    async def relayed() -> bool:
        published = await key_records(kafka, key)
        tombstoned = bool(published) and published[-1].value is None
        return tombstoned or any(m.value is not None and m.value["orgs"] for m in published)

    await wait_until(relayed)  # the tombstone is there, or the key republished with the grant
    published = await key_records(kafka, key)
    assert published[-1].value is None, published[-1]  # the key's last word is its tombstone

    await wait_for_status(notifications_client, "/tables", 401, basic(key))


async def test_a_key_loses_what_its_user_loses_demoted_or_a_grant_taken(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    make_user: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    ops = await make_user("ops@example.com", is_admin=True)
    granted = await security_client.post(
        f"/users/{ops['id']}/grants", json={"grant": {"organization_id": 5, "role": "member"}}, headers=admin
    )
    assert granted.status == 201
    key = await issue_key(ops["id"], admin)

    await wait_for_status(notifications_client, "/info", 200, basic(key))
    demoted = await security_client.put(f"/users/{ops['id']}", json={"user": {"admin": False}}, headers=admin)
    assert demoted.status == 200

    # an administrator's no more
    await wait_for_status(notifications_client, "/info", 403, basic(key))
    for path, body in (
        ("/ksql", {"ksql": "LIST TOPICS;"}),
        ("/query", {"ksql": "SELECT * FROM customers_table;"}),
    ):
        resp = await notifications_client.post(path, json=body, headers=basic(key))
        assert resp.status == 403, path

    taken = await security_client.delete(f"/users/{ops['id']}/grants/5", headers=admin)
    assert taken.status == 204

    async def republished_without_the_grant() -> bool:
        published = await key_records(kafka, key)
        last = published[-1].value if published else None
        return last is not None and last["orgs"] == {} and last["admin"] is False

    await wait_until(republished_without_the_grant)


async def test_a_revoked_key_stays_refused_by_a_notifications_api_started_afterwards(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    make_user: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
    test_env: dict[str, str],
    serve: Callable[..., Any],
) -> None:
    ops = await make_user("ops@example.com", is_admin=True)
    kept, revoked = await issue_key(ops["id"], admin), await issue_key(ops["id"], admin)

    for k in (kept, revoked):
        await wait_for_status(notifications_client, "/info", 200, basic(k))
    resp = await security_client.delete(f"/users/{ops['id']}/api_keys/{revoked['id']}", headers=admin)
    assert resp.status == 204

    await wait_for_status(notifications_client, "/info", 401, basic(revoked))
    await notifications_client.close()  # the API restarts: it reads api_keys whole, tombstone too
    restarted = await serve(create_app(Config.from_env(test_env)))
    assert (await restarted.get("/info", headers=basic(revoked))).status == 401
    assert (await restarted.get("/info", headers=basic(kept))).status == 200


async def test_a_malformed_record_on_the_api_keys_topic_admits_no_one_and_breaks_nothing(
    notifications_client: TestClient[Any, Any], kafka: KafkaSettings
) -> None:
    """In plaintext mode anyone may write the topic (the secured suite shows the broker refusing
    it there); what the API makes of a record that the security service would never write: a
    401, never a 500, never an administrator made of a string."""
    secret = "s" * 43
    digest = hashlib.sha256(secret.encode()).hexdigest()
    good = {
        "kind": "api_key",
        "id": 1,
        "user_id": 1,
        "email": "x@example.com",
        "orgs": {},
        "action": "created",
    }
    records = {
        "KRNONASCIIHASH00": {**good, "key": "KRNONASCIIHASH00", "admin": True, "secret_sha256": "é" * 64},
        "KRSTRINGADMIN000": {**good, "key": "KRSTRINGADMIN000", "admin": "false", "secret_sha256": digest},
        "KRNOTITSOWNKEY00": {**good, "key": "KRSOMEONEELSE000", "admin": True, "secret_sha256": digest},
        "KRHASHNOTSTRING0": {**good, "key": "KRHASHNOTSTRING0", "admin": True, "secret_sha256": 5},
        "KRORGSALIST00000": {
            **good,
            "key": "KRORGSALIST00000",
            "admin": False,
            "secret_sha256": digest,
            "orgs": [1],
        },
    }
    producer = AIOKafkaProducer(**kafka.client_kwargs())
    await producer.start()
    try:
        for key, value in records.items():
            await producer.send_and_wait(kafka.topic("api_keys"), orjson.dumps(value), key=key.encode())
        await producer.send_and_wait(kafka.topic("api_keys"), b"[1]", key=b"KRNOTANOBJECT000")
    finally:
        await producer.stop()
    assert notifications_client.app is not None
    keys = notifications_client.app[BASIC_AUTH]
    assert isinstance(keys, ApiKeys) and await keys.view.caught_up(PATIENCE)
    for key in [*records, "KRNOTANOBJECT000"]:
        resp = await notifications_client.get("/info", headers=basic({"key": key, "secret": secret}))
        assert resp.status == 401, (key, resp.status, await resp.text())  # "false" is no administrator
        assert (await resp.json())["detail"] == "unknown API key or wrong secret"


async def test_a_password_change_revokes_the_users_keys_as_it_does_their_tokens(
    security_client: TestClient[Any, Any],
    notifications_client: TestClient[Any, Any],
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
) -> None:
    """A stolen token is a short-lived credential; a key minted with it never expires. Changing
    the password, the remedy for a stolen credential, must end both."""
    ann = await make_user("ann@example.com")
    stolen = await login("ann@example.com")
    minted = await issue_key(ann["id"], stolen)  # the thief's key

    await wait_for_status(notifications_client, "/tables", 200, basic(minted))
    email_changed = await security_client.put(
        f"/users/{ann['id']}", json={"user": {"email": "ann2@example.com"}}, headers=admin
    )
    assert email_changed.status == 200
    changed = await security_client.put(
        f"/users/{ann['id']}", json={"user": {"password": "a-new-good-password"}}, headers=admin
    )
    assert changed.status == 200

    await wait_for_status(notifications_client, "/tables", 401, basic(minted))
    listed = await (await security_client.get(f"/users/{ann['id']}/api_keys", headers=admin)).json()
    assert listed["items"] == []


async def test_a_user_has_a_bounded_number_of_keys_and_one_more_changes_nothing(
    security_client: TestClient[Any, Any],
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    issue_key: Callable[..., Any],
    admin: dict[str, str],
    kafka: KafkaSettings,
) -> None:
    """Every key is published again at each change of its user, in that change's transaction:
    a user minting keys without end would make each grant of theirs (and the API's memory) grow
    without end."""
    ann = await make_user("ann@example.com")
    own = await login("ann@example.com")
    issued = [await issue_key(ann["id"], own) for _ in range(MAX_API_KEYS_PER_USER)]
    refused = await security_client.post(f"/users/{ann['id']}/api_keys", json={}, headers=own)
    assert refused.status == 409, await refused.text()
    assert str(MAX_API_KEYS_PER_USER) in (await refused.json())["detail"]
    listed = await (await security_client.get(f"/users/{ann['id']}/api_keys?limit=100", headers=admin)).json()
    assert sorted(k["key"] for k in listed["items"]) == sorted(k["key"] for k in issued)
    published = await read_topic(kafka, "api_keys", min_count=len(issued))
    assert sorted({m.key for m in published}) == sorted(k["key"] for k in issued)
    revoked = await security_client.delete(f"/users/{ann['id']}/api_keys/{issued[0]['id']}", headers=own)
    assert revoked.status == 204
    assert (await security_client.post(f"/users/{ann['id']}/api_keys", json={}, headers=own)).status == 201
