"""The console attacked: by a hostile caller (names of one dead letter spelled twice, a dead
letter naming a topic the materializer never reads, internal topics, a stream kept open after
signing out, the bearer header instead of the cookie) and by a failing machine (PostgreSQL
refusing the record of a replay after the record went out, Kafka refusing the replayed record,
a worker answering figures that are not numbers). Real Kafka and PostgreSQL throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from console import deadletters, notices
from console.config import OperationsSettings
from console.db import console_pool
from console.errors import InvalidInput, NotAllowed, NotFound, Unavailable
from kafka_integration import KafkaSettings, new_producer
from kafka_integration.topics import TopicSpec, ensure_topics
from servicekit.db import migrate
from tests.console.conftest import ADMIN, ServeConsole, csrf_of, sign_in
from tests.support import Tokens, base_url, read_topic, wait_until


async def _dead_letter(kafka: KafkaSettings, ops: OperationsSettings, **body: Any) -> str:
    """A dead letter on the dead-letter topic as the materializer writes one; its console id."""
    letter = {
        "reason": "no row in customers_table",
        "name": "invoices_created",
        "topic": "invoices",
        "partition": 0,
        "offset": 3,
        "timestamp": 1_700_000_000_000,
        "key": "910001",
        "value": {"id": 910001, "customer_id": 810001, "action": "created"},
        **body,
    }
    producer = new_producer(kafka)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            kafka.topic(ops.dead_letter_topic), orjson.dumps(letter), key=b"910001", partition=0
        )
    finally:
        await producer.stop()
    return f"m-{meta.partition}-{meta.offset}"


async def _replayed(kafka: KafkaSettings, topic: str) -> list[Any]:
    """The records on `topic` that a replay produced (every copy)."""
    found = await read_topic(kafka, topic)
    return [m for m in found if deadletters.REPLAY_HEADER in dict(m.headers or {})]


@pytest.fixture
async def topics(kafka: KafkaSettings, ops: OperationsSettings) -> None:
    await ensure_topics(
        kafka, [TopicSpec("invoices", partitions=1, compacted=False), TopicSpec(ops.dead_letter_topic, 1)]
    )


async def test_a_dead_letter_spelled_with_leading_zeros_is_still_replayed_once(
    topics: None, pool: asyncpg.Pool, ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    ident = await _dead_letter(kafka, ops)
    _, partition, offset = ident.split("-")
    same = [f"m-0{partition}-{offset}", f"m-{partition}-00{offset}"]
    [done] = await deadletters.replay(pool, ops, [ident], "tester")
    assert done["id"] == ident
    for alias in same:
        with pytest.raises(NotAllowed):
            await deadletters.replay(pool, ops, [alias], "tester")
    assert len(await _replayed(kafka, "invoices")) == 1
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 1


async def test_an_outbox_dead_letter_named_twice_in_one_selection_is_moved_back_once(
    pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    schema = ops.schemas["orders"]
    await migrate(pool, ["kafka_integration"], schema)
    await pool.execute(
        f"""INSERT INTO "{schema}".kafka_outbox_dead (id, topic, key, value, headers, created_at, error)
            VALUES (77, 'orders', '5', '{{"id": 5}}', '{{}}', now(), 'MessageSizeTooLargeError')"""
    )
    done = await deadletters.replay(pool, ops, ["o-orders-77", "o-orders-077"], "tester")
    assert [d["id"] for d in done] == ["o-orders-77"]
    with pytest.raises(NotAllowed):
        await deadletters.replay(pool, ops, ["o-orders-0077"], "tester")
    assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".kafka_outbox WHERE key = $1', "5") == 1
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 1


@pytest.mark.parametrize("target", ["revocations", "api_keys", "users", "notifications_dead_letters"])
async def test_a_dead_letter_naming_a_topic_the_materializer_does_not_read_is_not_replayed(
    target: str, topics: None, pool: asyncpg.Pool, ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    """Whoever can write the dead-letter topic must not get the console (an administrator's
    click) to publish a forged revocation, API key or user."""
    await ensure_topics(kafka, [TopicSpec(target, partitions=1)])
    ident = await _dead_letter(kafka, ops, topic=target, key="1", value={"id": 1, "admin": True})
    with pytest.raises(NotAllowed):
        await deadletters.replay(pool, ops, [ident], "tester")
    assert await _replayed(kafka, target) == []
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 0


async def test_a_replay_postgresql_cannot_confirm_after_it_went_out_is_not_done_twice(
    topics: None, pool: asyncpg.Pool, ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    """PostgreSQL fails after the record was produced: the letter must not look untouched (a
    second click would send the invoice twice); it stays claimed, its replay unconfirmed."""
    ident = await _dead_letter(kafka, ops)
    await pool.execute(
        """CREATE FUNCTION refuse_target() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the database went away'; END $$;
           CREATE TRIGGER refuse_target BEFORE UPDATE ON console_actions
           FOR EACH ROW EXECUTE FUNCTION refuse_target()"""
    )
    with pytest.raises(Unavailable):
        await deadletters.replay(pool, ops, [ident], "tester")
    await pool.execute("DROP TRIGGER refuse_target ON console_actions")
    with pytest.raises(NotAllowed):
        await deadletters.replay(pool, ops, [ident], "tester")
    assert len(await _replayed(kafka, "invoices")) == 1
    [letter] = [x for x in await deadletters.listing(pool, ops) if x.id == ident]
    assert letter.replayed is not None and letter.replayed["target"] is None


async def test_a_replay_kafka_refuses_is_not_recorded_and_can_be_tried_again(
    pool: asyncpg.Pool, ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    """Kafka refuses the replayed record (too large for its topic): nothing is recorded, the
    operator is told (a console error, not a crash), and the replay can be tried again."""
    await ensure_topics(
        kafka,
        [
            TopicSpec("invoices", partitions=1, compacted=False, config={"max.message.bytes": "2000"}),
            TopicSpec(ops.dead_letter_topic, 1),
        ],
    )
    ident = await _dead_letter(kafka, ops, value={"id": 1, "po": "x" * 5000})
    with pytest.raises(Unavailable):
        await deadletters.replay(pool, ops, [ident], "tester")
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 0
    assert await _replayed(kafka, "invoices") == []
    [letter] = [x for x in await deadletters.listing(pool, ops) if x.id == ident]
    assert letter.replayed is None


async def test_internal_topics_cannot_be_browsed(
    test_env: dict[str, str], serve_console: ServeConsole
) -> None:
    """The listing hides Kafka's own topics (every group's offsets, every transaction); the
    page of one, asked by name, must not show them either."""
    bare = KafkaSettings.from_env({**test_env, "KAFKA_TOPIC_PREFIX": ""}, client_id="tests")
    await ensure_topics(bare, [TopicSpec("revocations", partitions=1)])  # the console reads it
    client = await serve_console(KAFKA_TOPIC_PREFIX="")
    assert (await sign_in(client, *ADMIN)).status == 303
    for name in ("__consumer_offsets", "__transaction_state", "__cluster_metadata"):
        resp = await client.get(f"/topics/{name}?partition=0")
        assert resp.status == 404, (name, resp.status)


async def test_the_live_stream_ends_once_the_session_is_signed_out(console: TestClient[Any, Any]) -> None:
    assert (await sign_in(console, *ADMIN)).status == 303
    token = await csrf_of(console, "/")
    async with console.get("/events") as stream:
        assert stream.status == 200
        await stream.content.readline()
        out = await console.post("/logout", data={"csrf": token}, allow_redirects=False)
        assert out.status == 303
        # the stream (opened with the now revoked token) ends, rather than feeding figures forever
        while await stream.content.readline():
            pass


async def test_the_bearer_header_expired_and_foreign_tokens_do_not_sign_in(
    console: TestClient[Any, Any], tokens: Tokens, signing_keys: dict[str, str], tmp_path: Any
) -> None:
    from tests.support import write_signing_keys

    admin = tokens.admin()
    for path in ("/", "/deadletters", "/topics", "/events"):  # the header is not the session
        resp = await console.get(path, headers=Tokens.header(admin), allow_redirects=False)
        assert resp.status in (303, 401), (path, resp.status)
    other = write_signing_keys(tmp_path)["JWT_PRIVATE_KEY_FILE"]
    for token in (
        tokens.make(admin=True, ttl=-120),
        tokens.make(admin=True, key_file=other),
        tokens.make(admin=True, aud="someone-else"),
        tokens.make(admin=cast(Any, "false")),  # a signed claim that is not JSON true: not an admin
        tokens.make(admin=cast(Any, 1)),
    ):
        console.session.cookie_jar.update_cookies({"console_session": token})
        resp = await console.get("/deadletters", allow_redirects=False)
        assert resp.status == 303, token
        token_field = await csrf_of(console, "/login")
        replay = await console.post(
            "/deadletters/replay", data={"csrf": token_field, "id": "m-0-0"}, allow_redirects=False
        )
        assert replay.status == 401


@pytest.fixture
async def odd_worker() -> AsyncIterator[str]:
    """A worker whose figures are not all finite numbers (a gauge can be NaN)."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response(["not", "an", "object"])

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            text="materializer_state_bytes NaN\nmaterializer_parked +Inf\nmaterializer_records_in_total x\n"
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield base_url(server)
    await server.close()


async def test_a_worker_answering_odd_figures_does_not_break_the_workers_page(
    serve_console: ServeConsole, odd_worker: str
) -> None:
    client = await serve_console(WORKER_URLS=odd_worker)
    assert (await sign_in(client, *ADMIN)).status == 303

    async def shown() -> bool:
        resp = await client.get("/workers")
        assert resp.status == 200, await resp.text()
        return odd_worker in await resp.text()

    await wait_until(shown)


async def test_a_dead_letter_id_with_a_trailing_newline_is_refused(
    pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    """`$` matches before a final newline: `m-0-1\\n` was a valid id (and another name)."""
    for bad in ("m-0-1\n", "o-orders-1\n"):
        with pytest.raises(InvalidInput):
            await deadletters.replay(pool, ops, [bad], "tester")
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 0


async def test_two_consoles_replaying_one_letter_at_once_send_it_once(
    topics: None, pool: asyncpg.Pool, ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    """A double click, or two console processes (each its own pool), at the same moment."""
    ident = await _dead_letter(kafka, ops)
    async with console_pool(ops) as other:
        outcomes = await asyncio.gather(
            *(
                deadletters.replay(p, ops, [ident], f"op{n}")
                for n, p in enumerate((pool, other, pool, other))
            ),
            return_exceptions=True,
        )
    assert len([o for o in outcomes if isinstance(o, list)]) == 1, outcomes
    assert all(isinstance(o, (list, NotAllowed)) for o in outcomes), outcomes
    assert len(await _replayed(kafka, "invoices")) == 1
    assert await pool.fetchval("SELECT count(*) FROM console_actions") == 1


async def test_what_a_dead_letter_says_is_shown_as_text(
    topics: None, console: TestClient[Any, Any], ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    script = '<script>alert(1)</script><img src=x onerror=alert(2)>"\x1b[2J'
    await _dead_letter(kafka, ops, reason=script, name=script, key=script, value={script: script})
    assert (await sign_in(console, *ADMIN)).status == 303

    async def listed() -> bool:
        return "&lt;script&gt;" in await (await console.get("/deadletters")).text()

    await wait_until(listed)
    page = await (
        await console.get("/deadletters?done=" + quote("1. Your session expired: sign in at evil.example"))
    ).text()
    assert "<script>" not in page and "<img" not in page and "\x1b" not in page
    assert "evil.example" not in page  # `done` is a count, nothing else is echoed


@pytest.mark.parametrize(
    "path",
    [
        "/static/../deadletters",
        "/static/..%2Fdeadletters",
        "/static/%2e%2e/deadletters",
        "/login/../deadletters",
        "/login/..%2Fdeadletters",
        "/health/../events",
        "/healthz",
        "/loginx",
    ],
)
async def test_public_path_prefixes_do_not_open_a_page(console: TestClient[Any, Any], path: str) -> None:
    resp = await console.get(path, allow_redirects=False)
    body = await resp.text()
    assert resp.status in (303, 401, 403, 404), (path, resp.status)
    assert "Dead letters" not in body and "event: flow" not in body, path


async def test_a_form_posted_from_another_origin_or_with_another_sessions_token_is_refused(
    console: TestClient[Any, Any], test_env: dict[str, str]
) -> None:
    """A sibling site can plant the CSRF cookie it knows a token for, and its POST is same-site
    (the SameSite cookie goes along): the Origin gives it away, and the token is the session's."""
    assert (await sign_in(console, *ADMIN)).status == 303
    token = await csrf_of(console, "/deadletters")
    for origin in ("http://evil.example", "null", "http://[", f"http://{console.host}:1"):
        resp = await console.post(
            "/deadletters/replay",
            data={"csrf": token, "id": "m-0-0"},
            headers={"Origin": origin},
            allow_redirects=False,
        )
        assert resp.status == 403, (origin, resp.status)
    same = await console.post(
        "/deadletters/replay",
        data={"csrf": token, "id": "m-0-0"},
        headers={"Origin": base_url(console)},
        allow_redirects=False,
    )
    assert same.status != 403  # the console's own page: past CSRF (no such letter: 404)
    proxied = await console.post(  # behind a proxy that names the browser's host this way
        "/deadletters/replay",
        data={"csrf": token, "id": "m-0-0"},
        headers={"Origin": "https://console.example", "X-Forwarded-Host": "console.example"},
        allow_redirects=False,
    )
    assert proxied.status != 403
    # the same CSRF cookie in a new session: the old session's token no longer does anything
    out = await console.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await sign_in(console, *ADMIN)).status == 303
    stale = await console.post(
        "/deadletters/replay", data={"csrf": token, "id": "m-0-0"}, allow_redirects=False
    )
    assert stale.status == 403
    fresh = await csrf_of(console, "/deadletters")
    assert fresh != token


@pytest.mark.parametrize(
    ("args", "broken", "says"),
    [
        (("lag",), {"BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "Kafka"),
        (("deadletters", "list"), {"DATABASE_URL": "postgresql://postgres:x@127.0.0.1:1/app"}, "PostgreSQL"),
        (("deadletters", "replay", "m-0-1\n"), {}, "id"),
        (
            ("deadletters", "replay", "m-0-1", "m-0-01"),
            {"BOOTSTRAP_SERVERS": "127.0.0.1:1"},
            "Kafka",
        ),
    ],
)
async def test_the_commands_say_what_is_down_or_refused_without_a_traceback(
    test_env: dict[str, str], args: tuple[str, ...], broken: dict[str, str], says: str
) -> None:
    from tests.console.test_operations import _console

    done = await _console({**test_env, "PATH": "/usr/bin:/bin", **broken}, *args)
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after what the Kafka client logs
    assert last.startswith(("error:", "refused:")) and says in last, done.stderr


async def test_odd_record_times_and_hostile_positions_never_break_a_page(
    topics: None, console: TestClient[Any, Any], ops: OperationsSettings, kafka: KafkaSettings
) -> None:
    """Dead letters claiming a time past year 9999, before year 1 or not a number: the page
    still shows them (the time blank); hostile browse positions get a page or a 4xx."""
    for when in (10**17, -(10**17), "yesterday", 2**63 - 1):
        await _dead_letter(kafka, ops, timestamp=when)
    # (a record's own time cannot be so: the broker refuses one more than an hour ahead)
    assert (await sign_in(console, *ADMIN)).status == 303

    async def all_listed() -> bool:
        resp = await console.get("/deadletters")
        assert resp.status == 200, await resp.text()
        return (await resp.text()).count('class="replay-one"') == 4

    await wait_until(all_listed)
    page = await console.get("/topics/invoices?partition=0&offset=0")
    assert page.status == 200, await page.text()
    for query in (
        "at=0001-01-01T00:00:00%2B14:00",
        "at=9999-12-31T23:59:59-14:00",
        "at=2026-02-30T00:00:00Z",
        "offset=9223372036854775807",
        "partition=100000",
        "at=2026-01-01T00:00:00Z&offset=5",
    ):
        resp = await console.get(f"/topics/invoices?{query}")
        assert resp.status < 500, (query, resp.status, await resp.text())


async def test_another_tenants_notifications_are_neither_shown_nor_retried(
    pool: asyncpg.Pool, ops: OperationsSettings
) -> None:
    """Workers of several tenants (NOTIFICATIONS_TENANT) share the notifications table; each
    sends only its own. The console of one tenant (its topic prefix, its tenant) must not list,
    show or retry another's: a retried row would be sent by that tenant's worker."""
    schema = ops.schemas["notifications"]
    await migrate(pool, ["notifications"], schema)
    ids = {}
    for n, tenant in enumerate(("default", "other")):
        ids[tenant] = await pool.fetchval(
            f"""INSERT INTO "{schema}".email_notifications
                (source_topic, source_partition, source_offset, template, recipient, message_id,
                 status, error, failures, tenant)
                VALUES ('invoices', 0, $1, 'invoice', 'x@y.io', $2, 'failed', 'refused', 5, $3)
                RETURNING id""",
            n,
            f"<m{n}.{tenant}@test>",
            tenant,
        )
    assert [r["id"] for r in await notices.listing(pool, ops)] == [ids["default"]]
    assert (await notices.counts(pool, ops))["failed"] == 1
    with pytest.raises(NotFound):
        await notices.one(pool, ops, ids["other"])
    with pytest.raises(NotFound):
        await notices.retry(pool, ops, ids["other"], "tester")
    status = f'SELECT status FROM "{schema}".email_notifications WHERE id = $1'
    assert await pool.fetchval(status, ids["other"]) == "failed"
    await notices.retry(pool, ops, ids["default"], "tester")
    assert await pool.fetchval(status, ids["default"]) == "created"
