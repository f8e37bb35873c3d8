"""The declarative API: tables, filtered tables, streams and joins, a few lines each.

    topo = Topology()
    orgs = topo.table("organizations_table", topic="organizations", columns=("id", "name"))
    custs = topo.table("customers_table", topic="customers", columns=("id", "name", "email"))
    topo.filtered("created", custs, where=lambda row: row.get("action") == "created")
    topo.join("enriched", stream=topo.stream("s", topic="events", columns=("id", "customer_id")),
              joins=[Join(custs, on="customer_id", columns={"customer_name": "name"})],
              to_topic="enriched")

Topic names are logical; the runner applies the Kafka settings' prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from materializer.errors import TopologyError, UnknownTable
from materializer.join import Join, JoinedStream, OnOutput, Stream, StreamPredicate
from materializer.tables import AnyTable, Columns, FilteredTable, Predicate, Table, normalize_columns


class Topology:
    """What to materialize: declared once, then given to a Materializer (or OfflineMaterializer)."""

    def __init__(self) -> None:
        self.tables: dict[str, AnyTable] = {}
        self.streams: dict[str, Stream] = {}
        self.joins: dict[str, JoinedStream] = {}

    def _check_name(self, name: str) -> None:
        if not name or "\0" in name:
            raise TopologyError(f"invalid name {name!r}")
        if name in self.tables or name in self.streams or name in self.joins:
            raise TopologyError(f"{name!r} is already declared")

    def table(self, name: str, *, topic: str, columns: Columns, key: str | None = None) -> Table:
        """A table of the latest non-null value of each column per key (LATEST_BY_OFFSET)."""
        self._check_name(name)
        names, types = normalize_columns(columns)
        if not names:
            raise TopologyError(f"table {name!r} needs at least one column")
        if key is not None and key not in names:
            raise TopologyError(f"key column {key!r} of {name!r} is not among its columns")
        table = Table(name=name, topic=topic, columns=names, types=types, key=key)
        self.tables[name] = table
        return table

    def filtered(self, name: str, table: AnyTable | str, *, where: Predicate) -> FilteredTable:
        """A view of the rows of `table` for which `where(row)` holds."""
        self._check_name(name)
        source = self.get_table(table) if isinstance(table, str) else table
        if source.name not in self.tables:
            raise UnknownTable(f"{source.name!r} is not declared in this topology")
        if isinstance(source, FilteredTable):
            outer, inner = where, source.where
            view = FilteredTable(name, source.base, lambda row: bool(inner(row)) and bool(outer(row)))
        else:
            view = FilteredTable(name, source, where)
        self.tables[name] = view
        return view

    def stream(self, name: str, *, topic: str, columns: Columns = ()) -> Stream:
        """A stream of records (no state): joined with tables by `join`."""
        self._check_name(name)
        names, types = normalize_columns(columns)
        stream = Stream(name=name, topic=topic, columns=names, types=types)
        self.streams[name] = stream
        return stream

    def join(
        self,
        name: str,
        *,
        stream: Stream,
        joins: Iterable[Join],
        where: StreamPredicate | None = None,
        to_topic: str | None = None,
        on_output: OnOutput | None = None,
    ) -> JoinedStream:
        """A stream joined with tables; output to a topic and/or an awaited callback."""
        self._check_name(name)
        if self.streams.get(stream.name) is not stream:
            raise TopologyError(f"stream {stream.name!r} is not declared in this topology")
        joins = tuple(joins)
        for j in joins:
            if self.tables.get(j.table.name) is not j.table:
                raise UnknownTable(f"{j.table.name!r} is not declared in this topology")
            if stream.columns and j.on not in stream.columns:
                raise TopologyError(f"stream {stream.name!r} has no column {j.on!r} to join on")
        spec = JoinedStream(name, stream, joins, where, to_topic, on_output)
        self.joins[name] = spec
        return spec

    def get_table(self, name: str) -> AnyTable:
        try:
            return self.tables[name]
        except KeyError:
            raise UnknownTable(f"no table named {name!r}") from None

    # what the runners need

    def base_tables(self) -> list[Table]:
        return [t for t in self.tables.values() if isinstance(t, Table)]

    def table_topics(self) -> set[str]:
        return {t.topic for t in self.base_tables()}

    def tables_by_topic(self) -> dict[str, list[Table]]:
        out: dict[str, list[Table]] = {}
        for t in self.base_tables():
            out.setdefault(t.topic, []).append(t)
        return out

    def joins_by_topic(self) -> dict[str, list[JoinedStream]]:
        out: dict[str, list[JoinedStream]] = {}
        for j in self.joins.values():
            out.setdefault(j.stream.topic, []).append(j)
        return out

    def output_topics(self) -> set[str]:
        return {j.to_topic for j in self.joins.values() if j.to_topic}

    def fingerprint(self, physical: Callable[[str], str] = lambda t: t) -> str:
        """Identifies the stored state: changing a table's topic or columns rebuilds it."""
        shape: list[Any] = [
            [t.name, physical(t.topic), list(t.columns), t.key] for t in sorted(self.base_tables(), key=_name)
        ]
        return orjson.dumps(["v1", shape]).decode()


def _name(t: Table) -> str:
    return t.name
