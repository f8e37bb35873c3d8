"""ksqlDB's REST API, the part its clients use, over the notifications API's catalog (`streams.sql`)
and tables; administrators only (a Bearer token or an API key as HTTP Basic, servicekit.apikeys).

    GET  /info          {"KsqlServerInfo": {...}}
    POST /ksql          SHOW STREAMS; SHOW TABLES; LIST TOPICS; DESCRIBE name;
    POST /query         a pull query (a table's rows now) or a push query (EMIT CHANGES: a stream's
                        new records until LIMIT or the client goes), ksqlDB's v1 JSON array
    POST /query-stream  the same as ksqlDB's HTTP/2 endpoint answers it (a header then one array of
                        values per line, or one JSON array with Accept: application/json), over HTTP/1.1

Errors carry ksqlDB's members (notifications.ksqldb.errors) beside the problem details.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from kafka_integration import KafkaSettings, TopicMetadata
from materializer.sql.catalog import Declaration
from notifications import streams
from notifications.config import Config
from notifications.ksqldb import entities
from notifications.ksqldb.errors import KsqlStatementError
from notifications.ksqldb.models import Entities, Info, KsqlBody, QueryRows, QueryStreamBody, StreamedRows
from notifications.ksqldb.queries import PushQuery, pull, query_id
from notifications.ksqldb.statements import Query, columns_of, commands, query
from notifications.views import MATERIALIZER
from servicekit.auth import principal
from servicekit.errors import TooManyRequests, Unavailable
from servicekit.http import json_response
from servicekit.routes import Routes

VERSION = "0.29.0"  # the ksqlDB REST API whose shapes this follows
DELIMITED = "application/vnd.ksqlapi.delimited.v1"
MAX_PUSH_QUERIES = 32  # running at once in this process (each holds a Kafka consumer)
PATHS = frozenset({"/info", "/ksql", "/query", "/query-stream"})

CONFIG = web.AppKey("notifications.ksqldb.config", Config)
PUSH_QUERIES = web.AppKey("notifications.ksqldb.push_queries", list)

routes = Routes(tag="ksqldb")


def _physical(request: web.Request, decl: Declaration) -> str:
    return request.app[CONFIG].kafka.topic(decl.topic)


@routes.get("/info", "ksqlDB's server info (admin)", answer=Info)
async def info(request: web.Request) -> web.Response:
    principal(request).require_admin()
    config = request.app[CONFIG]
    server = {
        "version": VERSION,
        "kafkaClusterId": config.kafka.topic_prefix or "kafka-rails",
        "ksqlServiceId": f"{config.worker.group_id}_",
        "serverStatus": "RUNNING",
    }
    return json_response({"KsqlServerInfo": server})


@routes.post(
    "/ksql",
    "SHOW STREAMS, SHOW TABLES, LIST TOPICS, DESCRIBE name (admin)",
    body=KsqlBody,
    answer=Entities,
    example={"ksql": "SHOW STREAMS;", "streamsProperties": {}},
)
async def ksql(request: web.Request, body: KsqlBody) -> web.Response:
    principal(request).require_admin()
    catalog = streams.catalog()
    kafka = request.app[CONFIG].kafka
    sources = [(d, _physical(request, d)) for d in catalog.declarations.values()]
    out: list[dict[str, Any]] = []
    counts: dict[str, int] | None = None  # the broker's topics, asked once per request
    for command in commands(body.ksql, catalog):
        if command.kind == "streams":
            out.append(entities.streams(command.text, sources))
        elif command.kind == "tables":
            out.append(entities.tables(command.text, sources))
        else:
            if counts is None:
                counts = await _partition_counts(kafka)
            if command.kind == "topics":
                # the catalog's topics only: a broker shared by tenants holds theirs too, and a
                # prefix (or none) may be the start of another tenant's
                mine = {topic: counts[topic] for _, topic in sources if topic in counts}
                out.append(entities.topics(command.text, mine, kafka.replication_factor))
            else:
                decl = catalog.declarations[command.name]
                physical = _physical(request, decl)
                out.append(
                    entities.describe(
                        command.text,
                        decl,
                        columns_of(decl),
                        physical,
                        counts.get(physical, 0),
                        kafka.replication_factor,
                    )
                )
    return json_response(out)


async def _partition_counts(kafka: KafkaSettings) -> dict[str, int]:
    """Every topic of the broker and its partitions; Unavailable (503) if it cannot be asked."""
    try:
        async with TopicMetadata(kafka) as metadata:
            return await metadata.partition_counts()
    except Exception as exc:
        raise Unavailable(f"Kafka cannot be reached now to list its topics: {exc}") from exc


@routes.post(
    "/query",
    "run a pull or push query, ksqlDB's v1 answer (admin)",
    body=KsqlBody,
    answer=QueryRows,
    example={"ksql": "SELECT * FROM customers_table WHERE id = 10;", "streamsProperties": {}},
)
async def run_query(request: web.Request, body: KsqlBody) -> web.StreamResponse:
    """A push query's answer is streamed (chunked) until LIMIT or the client goes."""
    return await _answer(request, body.ksql, _v1_writer)


@routes.post(
    "/query-stream",
    "run a pull or push query, as ksqlDB's HTTP/2 endpoint answers, over HTTP/1.1 (admin)",
    body=QueryStreamBody,
    answer=StreamedRows,
    answer_media=(DELIMITED, "application/json"),
    operation_id="post_query_stream",
    example={"sql": "SELECT * FROM customers_table WHERE id = 10;", "properties": {}},
)
async def query_stream(request: web.Request, body: QueryStreamBody) -> web.StreamResponse:
    """`Accept: application/json` answers one JSON array; anything else the delimited lines."""
    as_array = "application/json" in request.headers.get("Accept", "")
    return await _answer(request, body.sql, lambda q: _streamed_writer(q, as_array))


class _Writer:
    """How one answer format frames the header, rows and end."""

    def __init__(
        self,
        content_type: str,
        first: bytes,
        row: Callable[[list[Any]], bytes],
        separator: bytes,
        opening: bytes,
        closing: bytes,
        final: bytes | None,
    ) -> None:
        self.content_type, self.first, self.row = content_type, first, row
        self.separator, self.opening, self.closing, self.final = separator, opening, closing, final

    def whole(self, rows: list[list[Any]]) -> bytes:
        parts = [self.first, *(self.row(r) for r in rows)]
        return self.opening + self.separator.join(parts) + self.closing

    def ending(self) -> bytes:
        return (self.separator + self.final if self.final else b"") + self.closing


def _v1_writer(q: Query) -> _Writer:
    """ksqlDB's v1 `/query` answer: one JSON array of a header, rows and a final message."""
    header = {"header": {"queryId": query_id(q), "schema": entities.schema_string(q.columns)}}
    return _Writer(
        "application/json",
        first=orjson.dumps(header),
        row=lambda values: orjson.dumps({"row": {"columns": values}}),
        separator=b",\n",
        opening=b"[",
        closing=b"]\n",
        final=orjson.dumps({"finalMessage": "Limit Reached"}),
    )


def _streamed_writer(q: Query, as_array: bool) -> _Writer:
    """`/query-stream`'s answer: a header then the rows' values, as one JSON array or by lines."""
    header = orjson.dumps(
        {
            "queryId": query_id(q),
            "columnNames": [c.name for c in q.columns],
            "columnTypes": [entities.sql_type(c) for c in q.columns],
        }
    )
    if as_array:
        return _Writer("application/json", header, orjson.dumps, b",\n", b"[", b"]\n", None)
    # one document per line, each line sent whole (a client reads the header before any row)
    return _Writer(
        DELIMITED, header + b"\n", lambda values: orjson.dumps(values) + b"\n", b"", b"", b"", None
    )


async def _answer(
    request: web.Request, text: str, writer_of: Callable[[Query], _Writer]
) -> web.StreamResponse:
    """Both query endpoints: the statement read and checked, then answered in `writer_of`'s
    format (a pull query's rows at once, a push query's as they come)."""
    principal(request).require_admin()
    q = query(text, streams.catalog())
    if q.push and q.source.field in streams.EMAILED:
        raise KsqlStatementError(
            f"{q.source.name} writes no topic (the worker emails from it): a push query cannot read it",
            q.text,
        )
    writer = writer_of(q)
    if not q.push:
        rows = pull(request.app[MATERIALIZER], q)
        return web.Response(body=writer.whole(rows), content_type=writer.content_type)
    running = request.app[PUSH_QUERIES]
    if len(running) >= MAX_PUSH_QUERIES:
        raise TooManyRequests(f"{MAX_PUSH_QUERIES} push queries are running; try again later", 5)
    push = PushQuery(request.app[CONFIG].kafka, q)
    running.append(push)
    response = web.StreamResponse(headers={"Content-Type": writer.content_type})
    try:
        await push.start()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(writer.opening + writer.first)
        sent = 0
        ending = writer.closing  # the rows ended with no LIMIT reached: the API is shutting down
        async for values in push.rows():
            if request.transport is None or request.transport.is_closing():
                ending = b""  # the client went away
                break
            if values is None:
                continue
            await response.write(writer.separator + writer.row(values))
            sent += 1
            if q.limit is not None and sent >= q.limit:
                ending = writer.ending()
                break
        if ending:
            await response.write(ending)
        await response.write_eof()
        return response
    except ConnectionResetError:  # the client went away while a row was written
        return response
    finally:
        running.remove(push)
        await push.stop()
