"""The bodies of ksqlDB's REST API as its clients send them, and its answers' shapes (for the
OpenAPI document; the answers themselves are built in notifications.ksqldb.entities)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from notifications.ksqldb.statements import MAX_STATEMENT_CHARS

# Properties are accepted and not used (they tune a ksqlDB server's Kafka Streams); bounded.
Properties = dict[str, Any]
_STRICT = ConfigDict(strict=True, extra="forbid")


class KsqlBody(BaseModel):
    """`/ksql` and `/query`: `{"ksql": "SHOW STREAMS;", "streamsProperties": {}}`."""

    model_config = _STRICT
    ksql: str = Field(min_length=1, max_length=MAX_STATEMENT_CHARS)
    streamsProperties: Properties = Field(default_factory=dict, max_length=100)
    properties: Properties = Field(default_factory=dict, max_length=100)
    sessionVariables: Properties = Field(default_factory=dict, max_length=100)
    commandSequenceNumber: int | None = None


class QueryStreamBody(BaseModel):
    """`/query-stream`: `{"sql": "SELECT * FROM customers_table;", "properties": {}}`."""

    model_config = _STRICT
    sql: str = Field(min_length=1, max_length=MAX_STATEMENT_CHARS)
    properties: Properties = Field(default_factory=dict, max_length=100)
    sessionVariables: Properties = Field(default_factory=dict, max_length=100)


class ServerInfo(BaseModel):
    version: str
    kafkaClusterId: str
    ksqlServiceId: str
    serverStatus: str


class Info(BaseModel):
    """`GET /info`: `{"KsqlServerInfo": {"version", "kafkaClusterId", "ksqlServiceId", "serverStatus"}}`."""

    KsqlServerInfo: ServerInfo


class Entities(RootModel[list[dict[str, Any]]]):
    """`/ksql`'s answer: one entity per statement, each with its `@type` (streams, tables,
    kafka_topics, sourceDescription)."""


class QueryRows(RootModel[list[dict[str, Any]]]):
    """`/query`'s answer: `{"header": {"queryId", "schema"}}`, then `{"row": {"columns": [...]}}` per
    row, then `{"finalMessage": "Limit Reached"}` when LIMIT ends a push query."""


class StreamedRows(RootModel[list[Any]]):
    """`/query-stream`'s answer with `Accept: application/json`: the header `{"queryId",
    "columnNames", "columnTypes"}` then one array of values per row. By default
    (`application/vnd.ksqlapi.delimited.v1`) the same, one JSON document per line."""
