"""The console's pages and actions. Every page is rendered on the server; the flow page's
figures are refreshed live over server-sent events (/events)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from console import deadletters, lag, notices, records, session, tables, topics
from console.errors import InvalidInput, NotFound
from console.flow import SAMPLE_SECONDS
from console.keys import CONFIG, FLOW, HTTP, NOTIFICATIONS_POOL, POOL
from kafka_integration.tail import escape_controls
from notifications import templates
from servicekit.auth import REVOCATIONS

routes = web.RouteTableDef()
MAX_FIELD = 1000
PageHandler = Callable[[web.Request], Awaitable[dict[str, Any]]]


def page(template: str) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """The handler's context rendered with `template`, plus what every page needs."""

    def wrap(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        @functools.wraps(handler)
        async def render(request: web.Request) -> web.Response:
            return render_page(template, request, await handler(request))

        return render

    return wrap


def render_page(
    template: str, request: web.Request, context: dict[str, Any], status: int = 200
) -> web.Response:
    common = {
        "csrf": session.csrf_token(request),
        "who": request.get(session.PRINCIPAL),
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(template, request, {**common, **context}, status=status)


def _field(form: Any, name: str, limit: int = MAX_FIELD, required: bool = True) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(name, "must be text")
    if required and not value:
        raise InvalidInput(name, "is required")
    if len(value) > limit:
        raise InvalidInput(name, f"at most {limit} characters")
    if any(not c.isprintable() for c in value):
        raise InvalidInput(name, "control characters are not allowed")
    return value


def _actor(request: web.Request) -> str:
    who = request[session.PRINCIPAL]
    return f"console:{who.email or who.user_id}"


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """503 until the token revocations are read (no session is checked before)."""
    if not request.app[REVOCATIONS].ready:
        return web.json_response({"status": "starting", "revocations": "not read yet"}, status=503)
    return web.json_response({"status": "ok", "revocations": "read"})


@routes.get("/login")
@page("login.html")
async def login_page(request: web.Request) -> dict[str, Any]:
    return {}


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    email = _field(form, "email", 320)
    password = _field(form, "password", 1000)
    token = await session.sign_in(request, email, password)
    response = web.HTTPSeeOther("/")
    config = request.app[CONFIG]
    response.set_cookie(
        session.SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=config.cookie_secure, path="/"
    )
    session.set_cookies(request, response)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    await session.sign_out(request)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(session.SESSION_COOKIE, path="/")
    raise response


@routes.get("/")
@page("flow.html")
async def flow_page(request: web.Request) -> dict[str, Any]:
    flow = request.app[FLOW]
    latest = flow.latest()
    drawn = flow.charts()
    groups: dict[str, list[Any]] = {"main": [], "partition": []}
    for name, _title, _how, group in flow.chart_list():
        groups[group].append(drawn[name])
    return {
        "figures": flow.snapshot(),
        "latest": latest,
        "topics": sorted(latest.topics) if latest else [],
        "partitions": sorted(latest.ends) if latest else [],
        "services": list(request.app[CONFIG].ops.schemas),
        "charts": groups["main"],
        "partition_charts": groups["partition"],
        "interval": SAMPLE_SECONDS,
    }


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    """The flow's latest figures as JSON (`flow`), and the new point of each chart (`points`),
    one of each per sample, while the session stays valid (a stream opened before signing out,
    or before its token was revoked, ends)."""
    flow = request.app[FLOW]
    async with sse_response(request) as stream:
        sent_at = None
        while stream.is_connected() and session.signed_in(request) is not None:
            await stream.send(json.dumps(flow.snapshot(), default=str), event="flow")
            latest = flow.latest()
            if latest is not None and latest.at != sent_at:
                sent_at = latest.at
                await stream.send(flow.points(), event="points")
            async with flow.changed:
                try:
                    await asyncio.wait_for(flow.changed.wait(), SAMPLE_SECONDS * 5)
                except TimeoutError:
                    pass
    return stream


@routes.get("/deadletters")
@page("deadletters.html")
async def deadletters_page(request: web.Request) -> dict[str, Any]:
    letters = await deadletters.listing(request.app[POOL], request.app[CONFIG].ops)
    return {
        "letters": [_shown_letter(x) for x in reversed(letters)],
        "done": done if (done := request.query.get("done", "")).isdecimal() and len(done) < 4 else "",
    }


def _shown_letter(letter: deadletters.Letter) -> dict[str, Any]:
    out = {k: escape_controls(v) if isinstance(v, str) else v for k, v in letter.as_dict().items()}
    out["value_text"] = json.dumps(letter.value, indent=2, ensure_ascii=True, default=str)[:5000]
    out["when"] = _when(letter.timestamp_ms)
    return out


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return ""
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # past year 9999 or before year 1: not shown
        return ""


@routes.post("/deadletters/replay")
async def replay(request: web.Request) -> web.Response:
    form = await request.post()
    ids = [str(v) for v in form.getall("id", [])]
    done = await deadletters.replay(request.app[POOL], request.app[CONFIG].ops, ids, _actor(request))
    raise web.HTTPSeeOther(f"/deadletters?done={len(done)}")


@routes.get("/notifications")
@page("notifications.html")
async def notifications_page(request: web.Request) -> dict[str, Any]:
    q = request.query
    filters = notices.check_filters(
        _field(q, "status", 20, False),
        _field(q, "organization", 20, False),
        _field(q, "template", 100, False),
    )
    rows = await notices.listing(request.app[POOL], request.app[CONFIG].ops, **filters)
    return {"rows": rows, "filters": filters, "statuses": notices.STATUSES}


@routes.get("/notifications/{id}")
@page("notification.html")
async def notification_page(request: web.Request) -> dict[str, Any]:
    """The message as the SMTP server took it (stored when it was sent); for one not sent yet, or
    sent before the message was stored, its template rendered now, and the page says so."""
    ident = notices.check_id(request.match_info["id"])
    row = await notices.one(request.app[POOL], request.app[CONFIG].ops, ident)
    if row.get("sent_message") is not None:
        return {"row": row, "message": notices.as_sent(bytes(row["sent_message"]))}
    try:
        template = await templates.find(
            request.app[NOTIFICATIONS_POOL], row["template"], row["tenant"], row["organization_id"]
        )
        subject, text, html = template.render(dict(row["args"] or {}))
    except Exception as exc:
        subject, text, html = f"(cannot render: {exc})", "", ""
    return {"row": row, "message": notices.Message(subject=subject, text=text, html=html)}


@routes.post("/notifications/{id}/retry")
async def retry(request: web.Request) -> web.Response:
    ident = notices.check_id(request.match_info["id"])
    await notices.retry(request.app[POOL], request.app[CONFIG].ops, ident, _actor(request))
    raise web.HTTPSeeOther(f"/notifications/{ident}")


@routes.get("/workers")
@page("workers.html")
async def workers_page(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    ops = config.ops
    try:
        members, partitions, problem = await lag.members(ops), await lag.partition_lag(ops), None
    except Exception as exc:  # Kafka cannot be asked: the page says so
        members, partitions, problem = [], [], f"Kafka cannot be asked: {type(exc).__name__}: {exc}"
    processes = [await _worker_process(request, url) for url in config.worker_urls]
    return {
        "members": members,
        "partitions": partitions,
        "problem": problem,
        "group": ops.group_id,
        "processes": processes,
    }


async def _worker_process(request: web.Request, url: str) -> dict[str, Any]:
    """A worker process as its /health and /metrics say: state, lag, state size, parked records."""
    out: dict[str, Any] = dict.fromkeys(("lag", "state_bytes", "parked", "records_in")) | {"url": url}
    http = request.app[HTTP]
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with http.get(f"{url}/health", timeout=timeout) as resp:
            health = await resp.json(content_type=None)
        async with http.get(f"{url}/metrics", timeout=timeout) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {**out, "status": f"not answering ({type(exc).__name__})"}
    figures = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in ("materializer_state_bytes", "materializer_parked", "materializer_records_in_total"):
            with contextlib.suppress(ValueError, OverflowError):  # NaN, Inf or not a number: unknown
                figures[name] = int(float(value))
    known = isinstance(health, dict)
    return {
        **out,
        "status": health.get("status") if known else "?",
        "lag": health.get("consumer_lag") if known else None,
        "state_bytes": figures.get("materializer_state_bytes"),
        "parked": figures.get("materializer_parked"),
        "records_in": figures.get("materializer_records_in_total"),
    }


def _shown_record(record: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(record["value"], indent=2, ensure_ascii=True, default=str)[:20000]
    return {**record, "when": _when(record["timestamp"]), "value_text": text}


@routes.get("/topics")
@page("topics.html")
async def topics_page(request: web.Request) -> dict[str, Any]:
    return {"topics": await topics.listing(request.app[CONFIG].ops.kafka)}


@routes.get("/topics/{topic}")
@page("topic.html")
async def topic_page(request: web.Request) -> dict[str, Any]:
    name = topics.check_topic(request.match_info["topic"])
    q = request.query
    partition, offset, at_ms = topics.check_position(
        _field(q, "partition", 20, False), _field(q, "offset", 20, False), _field(q, "at", 40, False)
    )
    kafka = request.app[CONFIG].ops.kafka
    if kafka.topic(name).startswith("__"):  # Kafka's own (every group's offsets), as in the listing
        raise NotFound(f"no topic {name!r}")
    found = await records.read_partition(kafka, name, partition, offset=offset, at_ms=at_ms, limit=50)
    return {
        "topic": name,
        "partition": partition,
        "offset": offset,
        "at": q.get("at", "")[:40],
        "records": [_shown_record(r) for r in found],
    }


@routes.get("/tables")
@page("tables.html")
async def tables_page(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    token = request.cookies.get(session.SESSION_COOKIE, "")
    return {"tables": await tables.listing(request.app[HTTP], config.notifications_url, token)}


@routes.get("/tables/{table}")
@page("table.html")
async def table_page(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    table = _field(request.match_info, "table", 100)
    tables.source_topic(table)  # NotFound for a table that is not one of ours
    key = _field(request.query, "key", 200, False)
    before = tables.check_cursor(_field(request.query, "before", tables.MAX_CURSOR, False))
    row, history, older = None, [], ""
    if key:
        key = tables.check_key(key)
        token = request.cookies.get(session.SESSION_COOKIE, "")
        row = await tables.row(request.app[HTTP], config.notifications_url, token, table, key)
        found, cursor = await tables.history(config.ops.kafka, table, key, before)
        history, older = [_shown_record(r) for r in found], tables.cursor_text(cursor)
    return {"table": table, "key": key, "row": row, "history": history, "older": older, "before": before}
