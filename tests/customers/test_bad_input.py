"""Bad input gets a 4xx JSON body naming the problem; nothing is written and no event is sent."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from kafka_integration import KafkaSettings
from tests.support import read_topic

JSON = {"Content-Type": "application/json"}

CASES = [
    # (method, path, raw body, status, words the answer must contain)
    ("POST", "/organizations", b'{"organization": {"name": "x"', 400, ["not valid JSON"]),
    ("POST", "/organizations", b"", 400, ["empty"]),
    ("POST", "/organizations", b'{"organization": {"name": "\xff\xfe"}}', 400, ["UTF-8"]),
    ("POST", "/organizations", b'{"organization": {}}', 422, ["organization.name", "required"]),
    ("POST", "/organizations", b'{"name": 5}', 422, ["organization.name"]),
    ("POST", "/organizations", b'{"organization": {"name": 42}}', 422, ["organization.name", "string"]),
    ("POST", "/organizations", b'{"organization": {"name": ""}}', 422, ["organization.name"]),
    ("POST", "/organizations", b'{"organization": {"name": "   "}}', 422, ["organization.name"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\\u0000b"}}', 422, ["control characters"]),
    # DEL, C1 (NEL), a line separator, a bidi override: control characters too
    ("POST", "/organizations", b'{"organization": {"name": "a\\u007fb"}}', 422, ["control characters"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\\u0085b"}}', 422, ["control characters"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\\u2028b"}}', 422, ["control characters"]),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "gpj.exe\\u202e", "last_name": "D", "email": "j@d.io"}}',
        422,
        ["customer.name", "control characters"],
    ),
    (
        "POST",
        "/organizations",
        b'{"organization": {"name": "ok", "admin": true}}',
        422,
        ["organization.admin"],
    ),
    ("POST", "/organizations", b"[1, 2]", 422, ["body"]),
    ("POST", "/organizations", b'{"organization": {"name": "' + b"n" * 10_000 + b'"}}', 422, ["at most 255"]),
    ("POST", "/organizations", b'{"organization": {"name": "' + b"n" * 70_000 + b'"}}', 413, ["limit"]),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D"}}',
        422,
        ["customer.email", "required"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "not-an-email"}}',
        422,
        ["customer.email"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "x@y.io\'; DROP TABLE customers; --"}}',
        422,
        ["customer.email"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": ["J"], "last_name": "D", "email": "a@b.io"}}',
        422,
        ["customer.name"],
    ),
    # POST /customers writes its row and event in one statement: hostile bodies still stop before it
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "\\ud800", "email": "j@d.io"}}',
        400,  # jiter refuses a lone surrogate escape as invalid JSON
        ["JSON"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j\\udfff@d.io"}}',
        400,
        ["JSON"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j\\u2029@d.io"}}',
        422,
        ["customer.email"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j\\u0000@d.io"}}',
        422,
        ["customer.email"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": NaN}}',
        400,
        ["NaN"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": -Infinity}}',
        400,
        ["Infinity"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": 1e400}}',
        400,
        ["range"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", '
        b'"organization_id": 9223372036854775808}}',
        422,
        ["customer.organization_id"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": 0}}',
        422,
        ["customer.organization_id"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io"}, "x": [{"a": {"b": 1, "b": 2}}]}',
        400,
        ["twice"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "j@d.io", "organization_id": '
        + b"[" * 3000
        + b"]" * 3000
        + b"}}",
        400,
        ["JSON"],
    ),
    (
        "POST",
        "/customers",
        b'\xef\xbb\xbf{"customer": {"name": "J", "last_name": "D", "email": "j@d.io"}}',
        400,
        ["JSON"],
    ),
    (
        "POST",
        "/customers",
        '{"customer": {"name": "J", "last_name": "D", "email": "j@d.io"}}'.encode("utf-16"),
        400,
        ["UTF-8"],
    ),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "\xed\xa0\x80", "email": "j@d.io"}}',
        400,
        ["UTF-8"],
    ),
    ("PUT", "/customers/1", b'{"customer": {}}', 422, ["at least one"]),
    ("PUT", "/organizations/999999", b'{"organization": {"name": "Ghost"}}', 404, ["999999"]),
    ("DELETE", "/organizations/999999", b"", 404, ["999999"]),
    ("GET", "/customers/999999", b"", 404, ["999999"]),
    ("GET", "/customers/99999999999999999999999", b"", 404, ["99999999999999999999999"]),
    ("GET", "/customers/1;DROP TABLE customers", b"", 404, []),
    ("GET", "/customers?limit=abc", b"", 422, ["limit"]),
    ("GET", "/nowhere", b"", 404, []),
    # nulls for required fields, ids past bigint, odd path ids, duplicate keys, deep nesting
    ("PUT", "/customers/1", b'{"customer": {"name": null}}', 422, ["customer.name", "must not be null"]),
    ("PUT", "/customers/1", b'{"customer": {"email": null}}', 422, ["customer.email", "must not be null"]),
    ("PUT", "/organizations/1", b'{"organization": {"name": null}}', 422, ["organization.name"]),
    (
        "POST",
        "/organizations/1/organization_associations",
        b'{"invite": {"customer_id": 9223372036854775808}}',
        422,
        ["invite.customer_id"],
    ),
    (
        "POST",
        "/organizations/1/organization_associations",
        b'{"invite": {"customer_id": true}}',
        422,
        ["invite.customer_id"],
    ),
    ("GET", "/organizations/9223372036854775808", b"", 404, []),
    ("GET", "/customers/+1", b"", 404, ["not a record id"]),
    ("GET", "/customers/1_0", b"", 404, ["not a record id"]),
    ("DELETE", "/customers/-1", b"", 404, []),
    ("POST", "/organizations", b'{"organization": {"name": "a", "name": "b"}}', 400, ["twice"]),
    ("POST", "/organizations", b'{"organization": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, ["JSON"]),
    ("POST", "/organizations", b'{"organization": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, ["nested"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\u0085b"}}', 422, ["control characters"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\u2028b"}}', 422, ["control characters"]),
    ("POST", "/organizations", b'{"organization": {"name": "a\u007fb"}}', 422, ["control characters"]),
    (
        "POST",
        "/customers",
        b'{"customer": {"name": "J", "last_name": "D", "email": "a@b.io", "email": "c@d.io"}}',
        400,
        ["twice"],
    ),
]


async def _counts(url: str, schema: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return (
            await conn.fetchval("SELECT count(*) FROM organizations"),
            await conn.fetchval("SELECT count(*) FROM customers"),
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), CASES)
async def test_bad_input_is_refused_and_changes_nothing(
    customers_client: TestClient[Any, Any],
    kafka: KafkaSettings,
    test_env: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    status: int,
    words: list[str],
) -> None:
    resp = await customers_client.request(method, path, data=body, headers=JSON)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    answer = await resp.json()
    assert (
        answer["type"]
        and answer["detail"]
        and answer["status"] == status
        and answer["instance"] == path.split("?")[0]
    )
    text = str(answer)
    for word in words:
        assert word in text
    assert await _counts(test_env["DATABASE_URL"], test_env["DATABASE_SCHEMA"]) == (0, 0)
    for topic in ("organizations", "customers"):
        assert await read_topic(kafka, topic, timeout=0) == []


async def test_sql_looking_names_are_stored_verbatim(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings, test_env: dict[str, str]
) -> None:
    name = "Robert'); DROP TABLE organizations; --"
    resp = await customers_client.post("/organizations", json={"organization": {"name": name}})
    assert resp.status == 201
    assert (await resp.json())["name"] == name
    assert await _counts(test_env["DATABASE_URL"], test_env["DATABASE_SCHEMA"]) == (1, 0)
    assert [m.value["name"] for m in await read_topic(kafka, "organizations", min_count=1)] == [name]


@pytest.mark.parametrize(
    "changes",
    [{"name": None}, {"last_name": None}, {"email": None}, {"name": "x" * 256}, {"email": "a\rb@c.io"}],
)
async def test_bad_changes_to_a_customer_change_nothing(
    customers_client: TestClient[Any, Any], kafka: KafkaSettings, changes: dict[str, Any]
) -> None:
    body = {"customer": {"name": "John", "last_name": "Do", "email": "jdo@gmail.com"}}
    created = await (await customers_client.post("/customers", json=body)).json()
    resp = await customers_client.put(f"/customers/{created['id']}", json={"customer": changes})
    assert resp.status == 422
    assert [f["field"] for f in (await resp.json())["errors"]] == [f"customer.{next(iter(changes))}"]
    assert await (await customers_client.get(f"/customers/{created['id']}")).json() == created
    assert len(await read_topic(kafka, "customers", timeout=0)) == 1
