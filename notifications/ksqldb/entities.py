"""The answers of `/ksql` as ksqlDB's REST API shapes them (KsqlEntity with its `@type`):
`streams` and `tables` (SHOW STREAMS/TABLES), `kafka_topics` (LIST TOPICS) and
`sourceDescription` (DESCRIBE), from the catalog of `streams.sql`.

What differs from a ksqlDB server, said in the answer rather than hidden: a table's `topic` is the
topic it is folded from (we keep no changelog topic of our own); queries are not listed (the
materializer runs them, they have no ids); `partitions` and `replication` come from the broker;
LIST TOPICS lists the topics of the catalog that exist, not every topic of the broker (one
broker may serve several tenants, told apart by their topic prefix).
"""

from __future__ import annotations

import re
from typing import Any

from materializer.sql.catalog import Column, Declaration, JoinedDecl, SourceStream

_KSQL_TYPES = {"VARCHAR": "STRING", "INT": "INTEGER"}
_WORD = re.compile(r"[A-Z]+")


def sql_type(column: Column) -> str:
    """A column's type as ksqlDB shows it (VARCHAR is STRING, INT is INTEGER)."""
    return _WORD.sub(lambda m: _KSQL_TYPES.get(m.group(), m.group()), column.sql_type.upper())


def schema_string(columns: list[Column]) -> str:
    """`/query`'s header schema: "`ID` INTEGER, `NAME` STRING"."""
    return ", ".join(f"`{c.name}` {sql_type(c)}" for c in columns)


def _source(decl: Declaration, physical: str) -> dict[str, Any]:
    return {
        "type": decl.kind,
        "name": decl.name,
        "topic": physical,
        "keyFormat": "KAFKA",
        "valueFormat": "JSON",
        "isWindowed": False,
    }


def streams(text: str, sources: list[tuple[Declaration, str]]) -> dict[str, Any]:
    listed = [_source(d, topic) for d, topic in sources if d.kind == "STREAM"]
    return {"@type": "streams", "statementText": text, "streams": listed, "warnings": []}


def tables(text: str, sources: list[tuple[Declaration, str]]) -> dict[str, Any]:
    listed = [_source(d, topic) for d, topic in sources if d.kind == "TABLE"]
    return {"@type": "tables", "statementText": text, "tables": listed, "warnings": []}


def topics(text: str, partitions: dict[str, int], replicas: int) -> dict[str, Any]:
    listed = [{"name": name, "replicaInfo": [replicas] * count} for name, count in sorted(partitions.items())]
    return {"@type": "kafka_topics", "statementText": text, "topics": listed, "warnings": []}


def describe(
    text: str, decl: Declaration, columns: list[Column], physical: str, partitions: int, replicas: int
) -> dict[str, Any]:
    key = None if isinstance(decl, SourceStream | JoinedDecl) else decl.key.field
    fields = []
    for column in columns:
        field: dict[str, Any] = {
            "name": column.name,
            "schema": {"type": sql_type(column), "fields": None, "memberSchema": None},
        }
        if column.field == key:
            field["type"] = "KEY"
        fields.append(field)
    description = {
        "name": decl.name,
        "windowType": None,
        "readQueries": [],
        "writeQueries": [],
        "fields": fields,
        "type": decl.kind,
        "timestamp": "",
        "statistics": "",
        "errorStats": "",
        "extended": False,
        "keyFormat": "KAFKA",
        "valueFormat": "JSON",
        "topic": physical,
        "partitions": partitions,
        "replication": replicas,
        "statement": "",
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
    }
    return {
        "@type": "sourceDescription",
        "statementText": text,
        "sourceDescription": description,
        "warnings": [],
    }
