"""The materialized tables, as the notifications API serves them (the console asks it with the
operator's own token): their row counts, a row by key; and a key's history, read back from the
topic the table is made from: every record of that key, newest first, a page at a time (each page
reads the topic backwards in bounded chunks; its cursor says where the next, older page starts)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from console import records
from console.errors import InvalidInput, NotFound, Unavailable
from kafka_integration import KafkaSettings

HISTORY_PAGE = 50  # records of a key's history a page shows at most
HISTORY_CHUNK = 2000  # offsets read back per partition at a time
HISTORY_BUDGET = 20_000  # offsets one page reads at most, however long the topic
MAX_CURSOR = 4000  # characters of a cursor


def source_topic(table: str) -> str:
    """The topic a table of the notifications' streams is read from."""
    from notifications import streams

    topo = streams.api_topology()
    if table not in topo.tables:
        raise NotFound(f"no table {table!r}; tables: {', '.join(streams.TABLES)}")
    found: Any = topo.tables[table]
    while not hasattr(found, "topic"):
        found = found.base
    return str(found.topic)


def check_key(raw: str) -> str:
    if not raw or len(raw) > 200 or not raw.isprintable():
        raise InvalidInput("key", "1 to 200 printable characters")
    return raw


async def _get(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    try:
        async with session.get(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            body = await resp.json(content_type=None) if resp.content_type.endswith("json") else None
            return resp.status, body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"the notifications API does not answer ({type(exc).__name__})") from None


async def listing(session: aiohttp.ClientSession, api: str, token: str) -> list[dict[str, Any]]:
    status, body = await _get(session, f"{api}/tables", token)
    if status != 200 or not isinstance(body, dict):
        raise Unavailable(f"the notifications API answered {status} for /tables")
    return [{**t, "topic": source_topic(t["name"])} for t in body.get("items", [])]


async def row(session: aiohttp.ClientSession, api: str, token: str, table: str, key: str) -> dict[str, Any]:
    source_topic(table)  # NotFound for a table that is not one of ours
    status, body = await _get(session, f"{api}/tables/{quote(table, safe='')}/{quote(key, safe='')}", token)
    if status == 404:
        raise NotFound(f"no row with key {key!r} in {table}")
    if status != 200 or not isinstance(body, dict):
        raise Unavailable(f"the notifications API answered {status}")
    return body


def check_cursor(raw: str) -> dict[int, int] | None:
    """`before`: where an older page of a history starts, as `partition:offset` pairs separated
    by commas; '' is the newest page (None)."""
    if not raw:
        return None
    problem = "partition:offset pairs separated by commas (as the 'older' link gives)"
    if len(raw) > MAX_CURSOR:
        raise InvalidInput("before", f"at most {MAX_CURSOR} characters: {problem}")
    out: dict[int, int] = {}
    for pair in raw.split(","):
        partition, sep, offset = pair.partition(":")
        if not sep or not _digits(partition, 6) or not _digits(offset, 19) or int(partition) in out:
            raise InvalidInput("before", problem)
        out[int(partition)] = int(offset)
    return out


def _digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def cursor_text(cursor: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(cursor.items()))


async def history(
    kafka: KafkaSettings, table: str, key: str, before: dict[int, int] | None = None
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """A page of the records of `key` on the table's topic, newest first, from `before` (None:
    the end now) back; and the cursor of the next, older page ({} when there is none)."""
    wanted = key.encode()
    try:
        return await records.scan_back(
            kafka,
            source_topic(table),
            lambda record: record.key == wanted,
            before=before,
            want=HISTORY_PAGE,
            chunk=HISTORY_CHUNK,
            budget=HISTORY_BUDGET,
        )
    except NotFound:  # the topic is not there (yet): no history
        if before is not None:
            raise
        return [], {}
