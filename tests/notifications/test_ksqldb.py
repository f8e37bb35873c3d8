"""ksqlDB's REST API on the notifications API: /info, /ksql (SHOW, LIST TOPICS, DESCRIBE), pull
queries on /query and /query-stream over the API's tables, ksqlDB-shaped errors for everything
refused, administrators only."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from notifications.app import create_app
from notifications.config import Config
from notifications.ksqldb.views import MAX_PUSH_QUERIES, PUSH_QUERIES
from tests.support import PATIENCE, Tokens, delete_topics, kafka_script, local_kafka, unique, wait_until


@pytest.fixture
async def api(test_env: dict[str, str], serve: Callable[..., Any], tokens: Tokens) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await serve(create_app(Config.from_env(test_env)), tokens.admin())
    return client


async def _customer(customers: TestClient[Any, Any], api: TestClient[Any, Any], email: str) -> dict[str, Any]:
    resp = await customers.post(
        "/customers", json={"customer": {"name": "Ada", "last_name": "L", "email": email}}
    )
    assert resp.status == 201, await resp.text()
    customer: dict[str, Any] = await resp.json()

    async def materialized() -> bool:
        return (await api.get(f"/tables/customers_table/{customer['id']}")).status == 200

    await wait_until(materialized)
    return customer


def _ksql_error(body: dict[str, Any], status: int, kind: str = "generic_error") -> None:
    assert body["@type"] == kind, body
    assert body["error_code"] // 100 == status, body
    assert body["message"], body
    assert body["status"] == status  # and still the services' problem details


async def test_info_answers_ksql_server_info(api: TestClient[Any, Any]) -> None:
    resp = await api.get("/info")
    assert resp.status == 200
    info = (await resp.json())["KsqlServerInfo"]
    assert info["serverStatus"] == "RUNNING" and info["version"].startswith("0.")
    assert set(info) == {"version", "kafkaClusterId", "ksqlServiceId", "serverStatus"}


async def test_show_streams_tables_list_topics_and_describe(
    api: TestClient[Any, Any], test_env: dict[str, str]
) -> None:
    text = (
        "SHOW STREAMS; SHOW TABLES;\nLIST TOPICS; DESCRIBE customers_table; describe ORDERS_CREATED extended;"
    )
    resp = await api.post("/ksql", json={"ksql": text, "streamsProperties": {}})
    assert resp.status == 200, await resp.text()
    shown, tables, topics, customers, orders = await resp.json()
    prefix = test_env["KAFKA_TOPIC_PREFIX"]
    assert shown["@type"] == "streams" and shown["statementText"] == "SHOW STREAMS;"
    streams = {s["name"]: s for s in shown["streams"]}
    assert streams["ORDERS_CREATED"] == {
        "type": "STREAM",
        "name": "ORDERS_CREATED",
        "topic": f"{prefix}orders_created",
        "keyFormat": "KAFKA",
        "valueFormat": "JSON",
        "isWindowed": False,
    }
    assert "CUSTOMERS_TABLE" not in streams
    assert tables["@type"] == "tables"
    assert {"ORGANIZATIONS_TABLE", "CUSTOMERS_TABLE", "CUSTOMER_CREATED"} <= {
        t["name"] for t in tables["tables"]
    }
    assert all(t["type"] == "TABLE" for t in tables["tables"])
    assert topics["@type"] == "kafka_topics"
    assert all(t["name"].startswith(prefix) for t in topics["topics"])  # this tenant's topics only
    assert customers["@type"] == "sourceDescription"
    description = customers["sourceDescription"]
    assert description["name"] == "CUSTOMERS_TABLE" and description["type"] == "TABLE"
    assert [(f["name"], f["schema"]["type"], f.get("type")) for f in description["fields"]] == [
        ("ID", "INTEGER", "KEY"),
        ("NAME", "STRING", None),
        ("LAST_NAME", "STRING", None),
        ("EMAIL", "STRING", None),
        ("ACTION", "STRING", None),
    ]
    assert [f["name"] for f in orders["sourceDescription"]["fields"]][-4:] == [
        "ORGANIZATION_NAME",
        "CUSTOMER_NAME",
        "CUSTOMER_LAST_NAME",
        "EMAIL",
    ]


async def test_a_pull_query_finds_a_customer_created_through_the_customers_api(
    api: TestClient[Any, Any], customers_client: TestClient[Any, Any]
) -> None:
    email = f"{unique('ada')}@example.com"
    customer = await _customer(customers_client, api, email)
    await _customer(customers_client, api, f"{unique('other')}@example.com")
    sql = f"SELECT * FROM customers_table WHERE id = {customer['id']};"
    resp = await api.post("/query", json={"ksql": sql, "streamsProperties": {}})
    assert resp.status == 200, await resp.text()
    header, row = await resp.json()
    assert (
        header["header"]["schema"]
        == "`ID` INTEGER, `NAME` STRING, `LAST_NAME` STRING, `EMAIL` STRING, `ACTION` STRING"
    )
    assert header["header"]["queryId"]
    assert row == {"row": {"columns": [customer["id"], "Ada", "L", email, "created"]}}

    by_email = await api.post(
        "/query", json={"ksql": f"SELECT id, email AS mail FROM customers_table WHERE email = '{email}';"}
    )
    assert (await by_email.json())[1:] == [{"row": {"columns": [customer["id"], email]}}]

    limited = await api.post("/query", json={"ksql": "SELECT id FROM customers_table LIMIT 1;"})
    assert len(await limited.json()) == 2

    stream = await api.post("/query-stream", json={"sql": sql, "properties": {}})
    assert stream.status == 200
    assert stream.content_type == "application/vnd.ksqlapi.delimited.v1"
    lines = (await stream.text()).splitlines()
    head = orjson.loads(lines[0])
    assert head["columnNames"] == ["ID", "NAME", "LAST_NAME", "EMAIL", "ACTION"]
    assert head["columnTypes"] == ["INTEGER", "STRING", "STRING", "STRING", "STRING"]
    assert [orjson.loads(line) for line in lines[1:]] == [[customer["id"], "Ada", "L", email, "created"]]

    as_json = await api.post("/query-stream", json={"sql": sql}, headers={"Accept": "application/json"})
    assert as_json.content_type == "application/json"
    assert (await as_json.json())[1] == [customer["id"], "Ada", "L", email, "created"]

    missing = await api.post("/query", json={"ksql": "SELECT * FROM customers_table WHERE id = 999999999;"})
    assert len(await missing.json()) == 1  # the header, no row


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "says"),
    [
        ("/ksql", {"ksql": "DROP STREAM orders_created;"}, 400, "statement_error", "SHOW STREAMS"),
        ("/ksql", {"ksql": "SHOW QUERIES;"}, 400, "statement_error", "DESCRIBE"),
        ("/ksql", {"ksql": "DESCRIBE no_such_thing;"}, 400, "statement_error", "does not exist"),
        ("/ksql", {"ksql": "SELECT * FROM customers_table;"}, 400, "statement_error", "/query"),
        ("/ksql", {"ksql": "SHOW STREAMS; DROP TABLE customers_table;"}, 400, "statement_error", "supported"),
        ("/query", {"ksql": "SELECT * FROM nope;"}, 400, "statement_error", "does not exist"),
        ("/query", {"ksql": "INSERT INTO orders_stream (id) VALUES (1);"}, 400, "statement_error", "SELECT"),
        (
            "/query",
            {"ksql": "SELECT * FROM customers_table; DROP TABLE customers_table;"},
            400,
            "statement_error",
            "one",
        ),
        (
            "/query",
            {"ksql": "SELECT * FROM customers_table WHERE id = '1' OR 1=1; --"},
            400,
            "statement_error",
            "compare",
        ),
        ("/query", {"ksql": "SELECT * FROM customers_table WHERE name = 'x'' OR ''1''=''1';"}, 200, None, ""),
        ("/query", {"ksql": "SELECT COUNT(*) FROM customers_table;"}, 400, "statement_error", "COUNT"),
        (
            "/query",
            {"ksql": "SELECT * FROM customers_table EMIT CHANGES;"},
            400,
            "statement_error",
            "pull query",
        ),
        ("/query", {"ksql": "SELECT * FROM orders_created;"}, 400, "statement_error", "EMIT CHANGES"),
        (
            "/query",
            {"ksql": "SELECT * FROM invoices_created EMIT CHANGES;"},
            400,
            "statement_error",
            "no topic",
        ),
        ("/query", {"ksql": "SELECT * FROM customers_table LIMIT -1;"}, 400, "statement_error", "LIMIT"),
        ("/query", {"ksql": "SELECT * FROM customers_table WHERE \x00 = 1;"}, 400, "statement_error", ""),
        ("/query", {"ksql": "SELECT * FROM customers_table WHERE id = 1\u202e;"}, 400, "statement_error", ""),
        ("/query", {"ksql": "SELECT * FROM " + "(" * 3000}, 400, "statement_error", ""),
        (
            "/query",
            {"ksql": "SELECT * FROM t WHERE " + " AND ".join(["id = 1"] * 300) + ";"},
            400,
            "statement_error",
            "",
        ),
        ("/query", {"ksql": "x" * 4_001}, 422, "generic_error", "ksql"),
        ("/query", {"ksql": ""}, 422, "generic_error", "ksql"),
        ("/query", {"sql": "SELECT * FROM customers_table;"}, 422, "generic_error", "ksql"),
        ("/query", {"ksql": 5}, 422, "generic_error", "ksql"),
        (
            "/ksql",
            {"ksql": "SHOW TABLES;", "streamsProperties": {"a": {"nested": 1}}},
            422,
            "generic_error",
            "streamsProperties",
        ),
        ("/ksql", {"ksql": "SHOW TABLES;", "unknown": 1}, 422, "generic_error", "unknown"),
        ("/query-stream", {"ksql": "SELECT * FROM customers_table;"}, 422, "generic_error", "sql"),
        ("/query-stream", {"sql": "SHOW TABLES;"}, 400, "statement_error", "SELECT"),
    ],
)
async def test_what_is_refused_gets_a_ksqldb_shaped_error(
    api: TestClient[Any, Any], path: str, body: dict[str, Any], status: int, kind: str | None, says: str
) -> None:
    resp = await api.post(path, json=body)
    assert resp.status == status, await resp.text()
    if kind is not None:
        answer = await resp.json(content_type=None)
        _ksql_error(answer, status, kind)
        assert says in answer["message"]
        if kind == "statement_error":
            assert answer["error_code"] == 40001 and "statementText" in answer


async def test_malformed_and_huge_bodies_get_ksqldb_shaped_errors(api: TestClient[Any, Any]) -> None:
    for raw, status in [
        (b"{not json", 400),
        (b"", 400),
        (b"\xff\xfe", 400),
        (b'{"ksql": "SHOW TABLES;", "ksql": "SHOW STREAMS;"}', 400),
        (b"[1, 2]", 422),
        (b'{"ksql": "' + b"A" * 200_000 + b'"}', 413),
    ]:
        resp = await api.post("/ksql", data=raw, headers={"Content-Type": "application/vnd.ksql.v1+json"})
        assert resp.status == status, (raw[:20], resp.status)
        _ksql_error(await resp.json(content_type=None), status)


async def test_non_administrators_and_strangers_get_ksqldb_shaped_401_and_403(
    api: TestClient[Any, Any], tokens: Tokens, customers_client: TestClient[Any, Any]
) -> None:
    customer = await _customer(customers_client, api, f"{unique('own')}@example.com")
    member = Tokens.header(tokens.make(user_id=7, orgs={1: "member"}))
    sql = f"SELECT * FROM customers_table WHERE id = {customer['id']};"
    for method, path, body in [
        ("GET", "/info", None),
        ("POST", "/ksql", {"ksql": "SHOW TABLES;"}),
        ("POST", "/query", {"ksql": sql}),
        ("POST", "/query-stream", {"sql": sql}),
        ("POST", "/query", {"ksql": "SELECT * FROM orders_created EMIT CHANGES;"}),
    ]:
        forbidden = await api.request(method, path, json=body, headers=member)
        assert forbidden.status == 403, path
        _ksql_error(await forbidden.json(content_type=None), 403)
        for headers in (
            {"Authorization": ""},
            {"Authorization": "Basic eA=="},
            {"Authorization": "Bearer x"},
        ):
            refused = await api.request(method, path, json=body, headers=headers)
            assert refused.status == 401, (path, headers)
            _ksql_error(await refused.json(content_type=None), 401)
            assert customer["email"] not in await refused.text()


async def test_describe_extended_in_ksqldbs_own_order_describes_the_source(api: TestClient[Any, Any]) -> None:
    """ksqlDB's syntax is `DESCRIBE [EXTENDED] name` (and `SHOW STREAMS EXTENDED`)."""
    resp = await api.post("/ksql", json={"ksql": "DESCRIBE EXTENDED customers_table; SHOW STREAMS EXTENDED;"})
    assert resp.status == 200, await resp.text()
    described, shown = await resp.json()
    assert described["sourceDescription"]["name"] == "CUSTOMERS_TABLE"
    assert described["statementText"] == "DESCRIBE EXTENDED customers_table;"
    assert shown["@type"] == "streams"
    for text in ("DESCRIBE EXTENDED;", "DESCRIBE EXTENDED EXTENDED customers_table;"):
        refused = await api.post("/ksql", json={"ksql": text})
        assert refused.status == 400, text
        _ksql_error(await refused.json(content_type=None), 400, "statement_error")


async def test_a_pull_query_by_key_answers_as_its_where_reads_whatever_the_literals_spelling(
    api: TestClient[Any, Any], customers_client: TestClient[Any, Any]
) -> None:
    """`id = 010`, `id = 10.0` and `id = 1e1` are `id = 10` as the WHERE compares: the row is
    answered, as it is by a scan (`NOT id <> 10`), not looked up under the key "010"."""
    customer = await _customer(customers_client, api, f"{unique('key')}@example.com")
    ident = customer["id"]
    for literal in (f"0{ident}", f"{ident}.0", f"{ident}e0", str(ident)):
        for where in (f"id = {literal}", f"{literal} = id", f"NOT id <> {literal}"):
            resp = await api.post("/query", json={"ksql": f"SELECT id FROM customers_table WHERE {where};"})
            assert resp.status == 200, await resp.text()
            assert (await resp.json())[1:] == [{"row": {"columns": [ident]}}], where


@pytest.mark.parametrize(
    "text",
    [
        "SHOW STREAMS EXTENDED;",
        "show\nstreams -- a comment\n;",
        "SHOW /* c */ STREAMS;",
        "LIST STREAMS EXTENDED;",
    ],
)
async def test_show_reads_as_list_does_extended_comments_and_newlines(
    api: TestClient[Any, Any], text: str
) -> None:
    resp = await api.post("/ksql", json={"ksql": text})
    assert resp.status == 200, await resp.text()
    assert [e["@type"] for e in await resp.json()] == ["streams"]


@pytest.mark.slow  # the broker's stop and restart: `make test-slow`
@pytest.mark.skipif(
    os.environ.get("BOOTSTRAP_SERVERS") is not None, reason="needs the project's own broker to stop"
)
async def test_with_kafka_down_what_needs_it_is_503_and_an_api_started_then_admits_no_one(
    api: TestClient[Any, Any],
    test_env: dict[str, str],
    serve: Callable[..., Any],
    tokens: Tokens,
    tmp_path: Path,
) -> None:
    assert local_kafka(test_env)
    await asyncio.to_thread(kafka_script, "stop")
    try:
        for text in ("LIST TOPICS;", "DESCRIBE customers_table;"):
            resp = await api.post("/ksql", json={"ksql": text})
            assert resp.status == 503, (text, resp.status, await resp.text())
            _ksql_error(await resp.json(content_type=None), 503)
        shown = await api.post("/ksql", json={"ksql": "SHOW TABLES;"})  # the catalog needs no broker
        assert shown.status == 200
        pushed = await api.post("/query", json={"ksql": "SELECT * FROM orders_created EMIT CHANGES;"})
        assert pushed.status == 503
        _ksql_error(await pushed.json(content_type=None), 503)

        cold_env = {**test_env, "MATERIALIZER_STATE_DIR": str(tmp_path)}
        cold = await serve(create_app(Config.from_env(cold_env)), ready=False)  # never read the topics
        for headers in (Tokens.header(tokens.admin()), {"Authorization": "Basic S1JYOnNlY3JldA=="}):
            refused = await cold.get("/info", headers=headers)
            assert refused.status == 503, headers
            assert refused.headers["Retry-After"]
            _ksql_error(await refused.json(content_type=None), 503)
        assert (await cold.get("/health")).status == 503
    finally:
        await asyncio.to_thread(kafka_script, "start")


@pytest.mark.skipif(
    os.environ.get("BOOTSTRAP_SERVERS") is not None,
    reason="makes unprefixed topics: the project's own broker only",
)
async def test_list_topics_shows_no_topic_of_another_tenant_even_with_no_prefix(
    api: TestClient[Any, Any],
    test_env: dict[str, str],
    serve: Callable[..., Any],
    tokens: Tokens,
    tmp_path: Path,
) -> None:
    """The tenant of `api` has its topics under its prefix; an API with no prefix (the default)
    on the same broker must not list them (their names carry the other tenant's name)."""
    other_prefix = test_env["KAFKA_TOPIC_PREFIX"]
    mine = await api.post("/ksql", json={"ksql": "LIST TOPICS;"})
    names = [t["name"] for t in (await mine.json())[0]["topics"]]
    assert f"{other_prefix}customers" in names and all(n.startswith(other_prefix) for n in names)
    unprefixed = await serve(
        create_app(
            Config.from_env({**test_env, "KAFKA_TOPIC_PREFIX": "", "MATERIALIZER_STATE_DIR": str(tmp_path)})
        ),
        tokens.admin(),
    )
    try:
        resp = await unprefixed.post("/ksql", json={"ksql": "LIST TOPICS; DESCRIBE customers_table;"})
        assert resp.status == 200, await resp.text()
        listed, described = await resp.json()
    finally:
        await unprefixed.close()
        await delete_topics(test_env, lambda name: "." not in name and not name.startswith("_"))
    assert not [t["name"] for t in listed["topics"] if t["name"].startswith(other_prefix)]
    assert described["sourceDescription"]["topic"] == "customers"


async def test_every_table_shown_answers_a_pull_query_and_every_stream_is_refused_one(
    api: TestClient[Any, Any],
) -> None:
    shown = await (await api.post("/ksql", json={"ksql": "SHOW TABLES; SHOW STREAMS;"})).json()
    tables = [t["name"] for t in shown[0]["tables"]]
    streams = [s["name"] for s in shown[1]["streams"]]
    assert tables and streams
    for name in tables:
        for path, body in (
            ("/query", {"ksql": f"SELECT * FROM {name} LIMIT 5;"}),
            ("/query-stream", {"sql": f"SELECT * FROM {name};"}),
        ):
            resp = await api.post(path, json=body)
            assert resp.status == 200, (name, path, await resp.text())
    for name in streams:
        resp = await api.post("/query", json={"ksql": f"SELECT * FROM {name};"})
        assert resp.status == 400, (name, await resp.text())


async def test_a_quote_inside_a_string_literal_stays_in_the_string(
    api: TestClient[Any, Any], customers_client: TestClient[Any, Any]
) -> None:
    """With a customer in the table, the classic injection finds no row (it is one string)."""
    customer = await _customer(customers_client, api, f"{unique('inj')}@example.com")
    for where in ("name = 'x'' OR ''1''=''1'", "email = 'x'' OR id > 0 --'"):
        resp = await api.post("/query", json={"ksql": f"SELECT id FROM customers_table WHERE {where};"})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())[1:] == [], where
    found = await api.post("/query", json={"ksql": "SELECT id FROM customers_table WHERE name = 'Ada';"})
    assert [r["row"]["columns"] for r in (await found.json())[1:]] == [[customer["id"]]]


async def test_push_queries_beyond_the_cap_get_429_and_each_one_gone_frees_its_place(
    api: TestClient[Any, Any],
) -> None:
    assert api.app is not None
    running = api.app[PUSH_QUERIES]
    sql = {"sql": "SELECT po FROM orders_created WHERE po = 'never' EMIT CHANGES;"}
    opened = []
    try:
        for _ in range(MAX_PUSH_QUERIES):
            resp = await api.post("/query-stream", json=sql)
            assert resp.status == 200, await resp.text()
            await asyncio.wait_for(resp.content.readline(), PATIENCE)  # its header: it runs
            opened.append(resp)
        assert len(running) == MAX_PUSH_QUERIES
        over = await api.post("/query-stream", json=sql)
        assert over.status == 429 and over.headers["Retry-After"]
        _ksql_error(await over.json(content_type=None), 429)
        opened.pop().close()  # a client goes without a word

        async def freed() -> bool:
            return len(running) == MAX_PUSH_QUERIES - 1

        await wait_until(freed)
        again = await api.post("/query-stream", json=sql)
        assert again.status == 200
        opened.append(again)
    finally:
        for resp in opened:
            resp.close()

    async def none_left() -> bool:
        return not running

    await wait_until(none_left)


async def test_the_apps_shutdown_ends_its_push_queries(api: TestClient[Any, Any]) -> None:
    """A push query runs until LIMIT or its client goes; the server's graceful shutdown waits
    for running requests (60 s in aiohttp) before it cuts them, so a push query left running
    would hold every restart of the API that long. The shutdown (on_shutdown) ends them."""
    assert api.app is not None
    resp = await api.post("/query-stream", json={"sql": "SELECT * FROM orders_created EMIT CHANGES;"})
    assert resp.status == 200
    await asyncio.wait_for(resp.content.readline(), PATIENCE)  # its header: it runs
    assert len(api.app[PUSH_QUERIES]) == 1
    v1 = await api.post("/query", json={"ksql": "SELECT * FROM orders_created EMIT CHANGES;"})
    assert v1.status == 200
    head = await asyncio.wait_for(v1.content.readuntil(b"}}"), PATIENCE)
    assert len(api.app[PUSH_QUERIES]) == 2
    await api.app.shutdown()
    assert await asyncio.wait_for(resp.content.read(), PATIENCE) == b""  # the stream ends, no row
    whole = head + await asyncio.wait_for(v1.content.read(), PATIENCE)
    assert [list(part) for part in orjson.loads(whole)] == [["header"]]  # a closed JSON array
    assert not api.app[PUSH_QUERIES]
