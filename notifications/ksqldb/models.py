"""The bodies of ksqlDB's REST API as its clients send them, and its answers' shapes (for the
OpenAPI document; the answers themselves are built in notifications.ksqldb.entities)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from notifications.ksqldb.statements import MAX_STATEMENT_CHARS

# Properties are accepted and not used (they tune a ksqlDB server's Kafka Streams): a few flat
# settings, bounded so that a body within the schema stays under the 64 KiB body limit.
PropertyName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
PropertyValue = Annotated[str, StringConstraints(max_length=128)] | int | float | bool
Properties = dict[PropertyName, PropertyValue]
MAX_PROPERTIES = 8
_STRICT = ConfigDict(strict=True, extra="forbid")


class KsqlBody(BaseModel):
    """`/ksql` and `/query`: `{"ksql": "SHOW STREAMS;", "streamsProperties": {}}`."""

    model_config = _STRICT
    ksql: str = Field(min_length=1, max_length=MAX_STATEMENT_CHARS)
    streamsProperties: Properties = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    properties: Properties = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    commandSequenceNumber: int | None = Field(None, ge=-1, le=2**63 - 1)


class QueryStreamBody(BaseModel):
    """`/query-stream`: `{"sql": "SELECT * FROM customers_table;", "properties": {}}`."""

    model_config = _STRICT
    sql: str = Field(min_length=1, max_length=MAX_STATEMENT_CHARS)
    properties: Properties = Field(default_factory=dict, max_length=MAX_PROPERTIES)


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
