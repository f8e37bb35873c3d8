"""What a file of statements declares (ksqlDB's catalog of streams and tables) and the Topology it makes.

Statements are checked one by one against the catalog as it stands (so an error names its
statement); the Topology is built from what is left once every statement ran (a DROP removes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from materializer.errors import TopologyError
from materializer.join import Join, JoinKind, OnOutput, Stream, StreamPredicate
from materializer.tables import AnyTable, Predicate
from materializer.topology import Topology

Types = tuple[type, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """A declared column: its canonical name, the JSON field it reads, its SQL type and Python types."""

    name: str
    field: str
    sql_type: str
    types: Types


@dataclass(frozen=True, eq=False)
class SourceStream:
    """`CREATE STREAM name (columns) WITH (kafka_topic=..., value_format='json', partitions=N)`."""

    name: str
    field: str
    topic: str
    columns: tuple[Column, ...]
    partitions: int | None

    kind = "STREAM"


@dataclass(frozen=True, eq=False)
class LatestTable:
    """`CREATE TABLE name AS SELECT key, LATEST_BY_OFFSET(col) AS col ... FROM stream GROUP BY key`."""

    name: str
    field: str
    source: SourceStream
    key: Column
    columns: tuple[Column, ...]

    kind = "TABLE"

    @property
    def topic(self) -> str:
        return self.source.topic


@dataclass(frozen=True, eq=False)
class FilteredView:
    """`CREATE TABLE name AS SELECT ... FROM table WHERE ...`."""

    name: str
    field: str
    source: LatestTable | FilteredView
    where: Predicate | None
    where_sql: str

    kind = "TABLE"

    @property
    def key(self) -> Column:
        return self.source.key

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.source.columns

    @property
    def topic(self) -> str:
        return self.source.topic


AnyTableDecl = LatestTable | FilteredView


@dataclass(frozen=True, eq=False)
class JoinDecl:
    """One `[INNER | LEFT] JOIN table alias ON stream.col = alias.key` and what it selects."""

    table: AnyTableDecl
    on: Column
    kind: JoinKind
    selected: tuple[tuple[str, Column], ...]  # output field, table column


@dataclass(frozen=True, eq=False)
class JoinedDecl:
    """`CREATE STREAM name AS SELECT ... FROM stream a [JOIN ...] [WHERE ...] EMIT CHANGES`."""

    name: str
    field: str
    source: SourceStream
    joins: tuple[JoinDecl, ...]
    where: StreamPredicate | None
    where_sql: str
    topic: str
    partitions: int | None

    kind = "STREAM"

    def output_columns(self) -> dict[str, Types]:
        """The fields of each output record and their Python types (every join may yield null)."""
        out = {c.field: c.types for c in self.source.columns}
        for join in self.joins:
            out.update({name: column.types for name, column in join.selected})
        return out


Declaration = SourceStream | LatestTable | FilteredView | JoinedDecl


@dataclass
class Catalog:
    """The declarations in order, by canonical name, and notes on what was accepted with a caveat."""

    declarations: dict[str, Declaration] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def by_field(self, name: str) -> Declaration:
        for d in self.declarations.values():
            if d.field == name:
                return d
        raise TopologyError(f"no stream or table named {name!r} in the SQL")

    def joined(self, name: str) -> JoinedDecl:
        d = self.by_field(name)
        if not isinstance(d, JoinedDecl):
            raise TopologyError(f"{name!r} is not a CREATE STREAM ... AS SELECT")
        return d

    def readers_of(self, decl: Declaration) -> list[str]:
        """The declarations that read `decl` (a DROP of it is refused while they exist)."""
        out = []
        for d in self.declarations.values():
            sources: list[Declaration] = []
            if isinstance(d, LatestTable | FilteredView):
                sources.append(d.source)
            elif isinstance(d, JoinedDecl):
                sources.extend([d.source, *(j.table for j in d.joins)])
            if any(s is decl for s in sources):
                out.append(d.name)
        return out

    def topology(
        self,
        *,
        on_output: Mapping[str, OnOutput] | None = None,
        topicless: Collection[str] = (),
        streams: bool = True,
    ) -> Topology:
        """The Topology: tables, then (with `streams`) the source streams and the joined streams.
        `on_output` attaches a callback to a joined stream by name; the joined streams named in
        `topicless` write no topic (a ksqlDB CSAS always writes one; a callback may be enough)."""
        handlers = dict(on_output or {})
        joined = {d.field for d in self.declarations.values() if isinstance(d, JoinedDecl)}
        for name in [*handlers, *topicless]:
            if name not in joined:
                raise TopologyError(f"no CREATE STREAM ... AS SELECT named {name!r} to attach to")
        topo = Topology()
        tables: dict[str, AnyTable] = {}
        made: dict[str, Stream] = {}
        for d in self.declarations.values():
            if isinstance(d, LatestTable):
                cols = {c.field: c.types for c in d.columns}
                tables[d.name] = topo.table(d.field, topic=d.topic, columns=cols)
            elif isinstance(d, FilteredView):
                where = d.where if d.where is not None else _always
                tables[d.name] = topo.filtered(d.field, tables[d.source.name], where=where)
            elif isinstance(d, SourceStream) and streams:
                made[d.name] = topo.stream(
                    d.field, topic=d.topic, columns={c.field: c.types for c in d.columns}
                )
            elif isinstance(d, JoinedDecl) and streams:
                joins = [
                    Join(
                        tables[j.table.name],
                        on=j.on.field,
                        kind=j.kind,
                        columns={out: col.field for out, col in j.selected},
                    )
                    for j in d.joins
                ]
                topo.join(
                    d.field,
                    stream=made[d.source.name],
                    joins=joins,
                    where=d.where,
                    to_topic=None if d.field in topicless else d.topic,
                    on_output=handlers.get(d.field),
                )
        return topo


def _always(row: object) -> bool:
    return True
