"""ksqlDB's REST API with the worker running: push queries over orders_created (the worker's join
writes the topic, the API reads it from its end), and a ksqlDB client of others, ksql-python-ng,
authenticated with an API key the security service issued."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from aiohttp.test_utils import TestClient
from ksql import KSQLAPI
from ksql.errors import KSQLError

from notifications.app import create_app as notifications_app
from notifications.config import Config
from notifications.ksqldb.views import PUSH_QUERIES
from security.app import create_app as security_app
from security.config import Config as SecurityConfig
from tests.support import Tokens, unique, wait_until

ORDER = {"date": "2022-05-07T07:50:03-00:00", "deliver_date": "2022-05-07T07:53:03-00:00", "state": "pending"}
ADMIN = {"email": "ksql-admin@example.com", "password": "ksql-admin-password"}


async def _post(client: TestClient[Any, Any], path: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


@pytest.fixture
async def api(system_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(notifications_app(Config.from_env(system_env)), tokens.admin())
    return client


@pytest.fixture
async def party(customers: TestClient[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An organization and a customer to order for."""
    org = await _post(customers, "/organizations", {"organization": {"name": "PushCo"}})
    email = f"{unique('push')}@example.com"
    person = await _post(
        customers, "/customers", {"customer": {"name": "P", "last_name": "Q", "email": email}}
    )
    return org, person


async def test_a_push_query_streams_an_order_placed_after_it_started_until_its_limit(
    api: TestClient[Any, Any], orders: TestClient[Any, Any], worker: Any, party: Any
) -> None:
    org, person = party
    # an order before the query: the query starts from the topic's end and never sends it
    await _post(
        orders,
        "/orders",
        {"po": "before", "organization_id": org["id"], "customer_id": person["id"], **ORDER},
    )

    async def joined_before() -> bool:
        return (await api.get("/tables/orders_created")).status == 200 and any(
            r["po"] == "before" for r in (await (await api.get("/tables/orders_created")).json())["items"]
        )

    await wait_until(joined_before)
    where = f"organization_id = {org['id']}"
    sql = f"SELECT po, organization_name FROM orders_created WHERE {where} EMIT CHANGES LIMIT 1;"
    resp = await api.post("/query", json={"ksql": sql, "streamsProperties": {}})
    assert resp.status == 200
    first = await asyncio.wait_for(resp.content.readuntil(b"}}"), 30)  # the header: the query has started
    header = orjson.loads(first.removeprefix(b"["))["header"]
    assert header["schema"] == "`PO` STRING, `ORGANIZATION_NAME` STRING"
    assert header["queryId"].startswith("transient_ORDERS_CREATED_")
    await _post(
        orders, "/orders", {"po": "after", "organization_id": org["id"], "customer_id": person["id"], **ORDER}
    )
    rest = await asyncio.wait_for(resp.read(), 30)  # ends at LIMIT 1
    assert orjson.loads(first + rest) == [
        {"header": header},
        {"row": {"columns": ["after", "PushCo"]}},
        {"finalMessage": "Limit Reached"},
    ]
    assert api.app is not None

    async def finished() -> bool:
        return not api.app[PUSH_QUERIES]  # type: ignore[index]

    await wait_until(finished)


async def test_a_push_query_stops_when_its_client_goes(
    api: TestClient[Any, Any], worker: Any, party: Any
) -> None:
    resp = await api.post("/query-stream", json={"sql": "SELECT * FROM orders_created EMIT CHANGES;"})
    assert resp.status == 200
    header = orjson.loads(await asyncio.wait_for(resp.content.readline(), 30))
    assert header["columnNames"][:2] == ["ID", "PO"]
    assert api.app is not None and len(api.app[PUSH_QUERIES]) == 1
    resp.close()

    async def stopped() -> bool:
        return not api.app[PUSH_QUERIES]  # type: ignore[index]

    await wait_until(stopped)


@pytest.fixture
async def ksql_client(
    system_env: dict[str, str], serve: Callable[..., Any], api: TestClient[Any, Any]
) -> KSQLAPI:
    """ksql-python-ng against the notifications API, with an API key of an administrator."""
    security = await serve(
        security_app(
            SecurityConfig.from_env(
                {**system_env, "ADMIN_EMAIL": ADMIN["email"], "ADMIN_PASSWORD": ADMIN["password"]}
            )
        )
    )
    login = await security.post("/login", json=ADMIN)
    admin = Tokens.header((await login.json())["jwt"])
    me = (await (await security.get("/users", headers=admin)).json())["items"][0]
    key = await (await security.post(f"/users/{me['id']}/api_keys", json={}, headers=admin)).json()
    url = str(api.make_url("")).rstrip("/")

    async def key_known() -> bool:
        basic = aiohttp.BasicAuth(key["key"], key["secret"]).encode()
        return (await api.get("/info", headers={"Authorization": basic})).status == 200

    await wait_until(key_known)
    return await asyncio.to_thread(KSQLAPI, url, api_key=key["key"], secret=key["secret"])


async def test_ksql_python_ng_shows_describes_and_pulls_a_customer(
    ksql_client: KSQLAPI, api: TestClient[Any, Any], customers: TestClient[Any, Any]
) -> None:
    streams = await asyncio.to_thread(ksql_client.ksql, "SHOW STREAMS;")
    assert "ORDERS_CREATED" in [s["name"] for s in streams[0]["streams"]]
    (description,) = await asyncio.to_thread(ksql_client.ksql, "DESCRIBE customers_table;")
    assert description["sourceDescription"]["fields"][0]["name"] == "ID"
    with pytest.raises(KSQLError) as refused:
        await asyncio.to_thread(ksql_client.ksql, "DROP STREAM orders_created;")
    assert refused.value.error_code == 40001

    email = f"{unique('ng')}@example.com"
    person = await _post(
        customers, "/customers", {"customer": {"name": "Ng", "last_name": "K", "email": email}}
    )

    async def materialized() -> bool:
        return (await api.get(f"/tables/customers_table/{person['id']}")).status == 200

    await wait_until(materialized)
    sql = f"SELECT * FROM customers_table WHERE id = {person['id']};"
    chunks = await asyncio.to_thread(lambda: list(ksql_client.query(sql, use_http2=False)))
    answer = json.loads("".join(chunks))  # /query's documented v1 array; see the README on parse=True
    assert answer[1] == {"row": {"columns": [person["id"], "Ng", "K", email, "created"]}}


async def test_ksql_python_ng_receives_an_order_placed_after_its_push_query_started(
    ksql_client: KSQLAPI, orders: TestClient[Any, Any], worker: Any, party: Any
) -> None:
    org, person = party
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[str | None] = asyncio.Queue()
    sql = f"SELECT po FROM orders_created WHERE customer_id = {person['id']} EMIT CHANGES LIMIT 1;"

    def consume() -> None:
        try:
            for chunk in ksql_client.query(sql, use_http2=False):
                loop.call_soon_threadsafe(received.put_nowait, chunk)
        finally:
            loop.call_soon_threadsafe(received.put_nowait, None)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    chunks = [await asyncio.wait_for(received.get(), 30)]  # the header: the query has started
    assert chunks[0] is not None and "header" in chunks[0]
    await _post(
        orders,
        "/orders",
        {"po": "ng-push", "organization_id": org["id"], "customer_id": person["id"], **ORDER},
    )
    while (chunk := await asyncio.wait_for(received.get(), 30)) is not None:
        chunks.append(chunk)
    reader.join(5)
    rows = json.loads("".join(c for c in chunks if c))
    assert rows[1:] == [{"row": {"columns": ["ng-push"]}}, {"finalMessage": "Limit Reached"}]


async def test_ksql_python_ng_http2_path_needs_a_server_that_speaks_http2(ksql_client: KSQLAPI) -> None:
    """Its /query-stream path opens HTTP/2 with prior knowledge (httpx, http1=False); aiohttp
    speaks HTTP/1.1 only, so the connection fails before any answer (the same route answers
    over HTTP/1.1: tests/notifications/test_ksqldb.py)."""

    def run() -> Iterator[str]:
        return iter(list(ksql_client.query("SELECT * FROM customers_table;", use_http2=True)))

    # aiohttp answers the HTTP/2 preface with an HTTP/1.1 400 and closes: httpx sees "Server
    # disconnected", a reset on read or on write, depending on timing; never an HTTP answer
    with pytest.raises(httpx.TransportError):
        await asyncio.to_thread(run)
