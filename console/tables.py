"""The materialized tables, as the notifications API serves them (the console asks it with the
operator's own token): their row counts, a row by key; and a key's history, read back from the
topic the table is made from."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from console import records
from console.errors import InvalidInput, NotFound, Unavailable
from kafka_integration import KafkaSettings

HISTORY_RECORDS = 2000  # the last records of the topic searched for a key's history


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


async def history(kafka: KafkaSettings, table: str, key: str) -> list[dict[str, Any]]:
    """The records of `key` among the last HISTORY_RECORDS of the table's topic, oldest first."""
    try:
        found = await records.read_topic(kafka, source_topic(table), limit=HISTORY_RECORDS)
    except NotFound:
        return []
    return [r for r in found if r["key"] == key]
