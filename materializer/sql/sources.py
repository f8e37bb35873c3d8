"""The envelope of a statement, around its SELECT: a new name checked against the catalog, DROP,
a source stream's columns and types, and a WITH clause's topic, format and partitions."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from kafka_integration.topics import is_topic_name
from materializer.sql.catalog import Catalog, Column
from materializer.sql.dialect import DIALECT, Name
from materializer.sql.reader import CreateSource, Drop, Property, Statement

_SCALARS: dict[exp.DType, tuple[str, tuple[type, ...]]] = {
    exp.DType.INT: ("INTEGER", (int,)),
    exp.DType.BIGINT: ("BIGINT", (int,)),
    exp.DType.VARCHAR: ("VARCHAR", (str,)),
    exp.DType.TEXT: ("VARCHAR", (str,)),  # STRING
    exp.DType.BOOLEAN: ("BOOLEAN", (bool,)),
    exp.DType.DOUBLE: ("DOUBLE", (float,)),
    exp.DType.DECIMAL: ("DECIMAL", (int, float)),
    exp.DType.ARRAY: ("ARRAY", (list,)),
}
TOPIC_RULE = "letters, digits, '.', '_' and '-', at most 249, not '.' or '..'"
TYPES = "INTEGER, BIGINT, VARCHAR (STRING), BOOLEAN, DOUBLE, DECIMAL(p, s), ARRAY<...>"


def check_new(catalog: Catalog, stmt: Statement, name: Name) -> None:
    for d in catalog.declarations.values():
        if d.name == name.canonical:
            stmt.refuse(f"a {d.kind.lower()} named {name.canonical} already exists")
        if d.field == name.field:
            stmt.refuse(f"{name.canonical} and {d.name} would both be called {name.field!r} in the topology")


def drop(catalog: Catalog, parsed: Drop) -> None:
    decl = catalog.declarations.get(parsed.name.canonical)
    if decl is None:
        if not parsed.if_exists:
            catalog.notes.append(
                f"{parsed.stmt.label}: {parsed.kind} {parsed.name.canonical} does not exist, nothing dropped "
                "(ksqlDB refuses this without IF EXISTS; a file is read into an empty catalog)"
            )
        return
    if decl.kind != parsed.kind:
        parsed.stmt.refuse(f"{decl.name} is a {decl.kind}, not a {parsed.kind}")
    readers = catalog.readers_of(decl)
    if readers:
        parsed.stmt.refuse(f"cannot drop {decl.name}: {', '.join(readers)} read(s) it; drop those first")
    del catalog.declarations[parsed.name.canonical]


def columns(parsed: CreateSource) -> tuple[Column, ...]:
    out: dict[str, Column] = {}
    for name, data_type, text, at in parsed.columns:
        if name.canonical in out:
            parsed.stmt.refuse(f"column {name.canonical} is declared twice", at)
        known = _SCALARS.get(data_type.this)
        params = data_type.expressions
        if (
            known is None
            or (data_type.this == exp.DType.DECIMAL) != (len(params) == 2)
            or (params and data_type.this not in (exp.DType.DECIMAL, exp.DType.ARRAY))
        ):
            parsed.stmt.refuse(f"unsupported type {text!r} of column {name.canonical}; types: {TYPES}", at)
        shown = known[0] if not params else data_type.sql(dialect=DIALECT).upper()
        out[name.canonical] = Column(name.canonical, name.field, shown, known[1])
    return tuple(out.values())


def sink(
    stmt: Statement, props: Mapping[str, Property], *, need_topic: bool
) -> tuple[str | None, int | None]:
    """KAFKA_TOPIC, VALUE_FORMAT (JSON only) and PARTITIONS of a WITH clause."""
    for key, prop in props.items():
        if key not in ("KAFKA_TOPIC", "VALUE_FORMAT", "PARTITIONS"):
            stmt.refuse(
                f"property {key} is not supported; supported: KAFKA_TOPIC, VALUE_FORMAT='JSON', PARTITIONS",
                prop.at,
            )
    topic = props.get("KAFKA_TOPIC")
    if topic is not None and not isinstance(topic.value, str):
        stmt.refuse("KAFKA_TOPIC must be a string", topic.at)
    if topic is not None and not is_topic_name(str(topic.value)):
        stmt.refuse(f"KAFKA_TOPIC {topic.value!r} is not a valid Kafka topic name ({TOPIC_RULE})", topic.at)
    fmt = props.get("VALUE_FORMAT")
    if need_topic and (topic is None or fmt is None):
        stmt.refuse("CREATE STREAM needs WITH (kafka_topic='...', value_format='json')")
    if fmt is not None and str(fmt.value).upper() != "JSON":
        stmt.refuse(f"VALUE_FORMAT {fmt.value!r} is not supported; only 'json'", fmt.at)
    parts = props.get("PARTITIONS")
    if parts is not None and (not isinstance(parts.value, int) or parts.value < 1):
        stmt.refuse("PARTITIONS must be a positive integer", parts.at)
    return (
        None if topic is None else str(topic.value),
        None if parts is None else int(parts.value),
    )
