"""Stream-table joins: `CREATE STREAM out AS SELECT ... FROM stream s [LEFT] JOIN table t ON s.col = t.key`.

Evaluation is pure: given a stream record's value, a time and the tables' versions, `evaluate`
joins each table's version as of that time (versioned tables, as Kafka Streams' KIP-914) and says
whether to emit (and what), wait for a row that is not there yet, skip (the `where` predicate), or
dead-letter (and why). The engine decides when a waiting record is joined or expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from materializer.errors import TopologyError
from materializer.source import Source
from materializer.state import Row, Store
from materializer.tables import _SCALAR_TYPES, AnyTable, FilteredTable, Predicate, check_columns

_SCALAR_OR_NULL = _SCALAR_TYPES | {type(None)}

JoinKind = Literal["inner", "left"]
OnOutput = Callable[[Row, Source], Awaitable[None]]
StreamPredicate = Callable[[Row], bool]


@dataclass(frozen=True, eq=False)
class Stream:
    """A stream over a topic: `CREATE STREAM name (columns) WITH (kafka_topic=...)`. With no
    columns every field of the record passes through."""

    name: str
    topic: str
    columns: tuple[str, ...] = ()
    types: dict[str, tuple[type, ...]] | None = None

    def project(self, value: Mapping[str, Any]) -> Row:
        """The declared columns of a record (PoisonRecord when one has the wrong type)."""
        columns = self.columns
        if not columns:
            return dict(value)
        if self.types is not None:
            check_columns(value, columns, self.types)
            return {c: value.get(c) for c in columns}
        # the common case (types undeclared) checked in one set operation, not a loop per column
        out = dict(zip(columns, map(value.get, columns), strict=True))
        if not _SCALAR_OR_NULL.issuperset(map(type, out.values())):
            check_columns(value, columns, None)  # raises, naming the first column refused
        return out


@dataclass(frozen=True, eq=False)
class Join:
    """One table joined to a stream. `on` is the stream column holding the table key; `columns`
    maps output names to table columns (empty: every table column under its own name). INNER
    dead-letters a record whose row never arrives; LEFT emits it with nulls. With `wait=False` a
    missing row is not waited for."""

    table: AnyTable
    on: str
    kind: JoinKind = "inner"
    columns: Mapping[str, str] = field(default_factory=dict)
    wait: bool = True
    outputs: tuple[tuple[str, str], ...] = field(default=(), init=False, repr=False)
    # what `evaluate` reads per record, resolved once: the base table and the view's filter
    base_name: str = field(default="", init=False, repr=False)
    accepts: Predicate | None = field(default=None, init=False, repr=False)
    output_names: tuple[str, ...] = field(default=(), init=False, repr=False)
    output_sources: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("inner", "left"):
            raise TopologyError(f"join kind must be 'inner' or 'left', got {self.kind!r}")
        for out, column in self.output_columns().items():
            if column not in self.table.columns:
                raise TopologyError(f"{self.table.name} has no column {column!r} (wanted as {out!r})")

        object.__setattr__(self, "outputs", tuple(self.output_columns().items()))
        object.__setattr__(self, "base_name", self.table.base.name)
        object.__setattr__(self, "output_names", tuple(name for name, _ in self.outputs))
        object.__setattr__(self, "output_sources", tuple(column for _, column in self.outputs))
        if isinstance(self.table, FilteredTable):
            object.__setattr__(self, "accepts", self.table.accepts)

    def output_columns(self) -> Mapping[str, str]:
        return self.columns or {c: c for c in self.table.columns}


@dataclass(frozen=True, eq=False)
class JoinedStream:
    """A declared join: its stream, its tables, an optional filter, and where its output goes."""

    name: str
    stream: Stream
    joins: tuple[Join, ...]
    where: StreamPredicate | None = None
    to_topic: str | None = None
    on_output: OnOutput | None = None


Verdict = Literal["emit", "wait", "skip", "dead"]


@dataclass(slots=True)  # not frozen: one is made per record and join, and frozen inits cost
class Decision:
    """What to do with one stream record for one join."""

    verdict: Verdict
    output: Row | None = None
    reason: str = ""
    missing: tuple[str, ...] = ()
    too_old: bool = False  # a table's versions kept do not reach back to the time asked


def join_keys(spec: JoinedStream, value: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (base table, key) pairs a record of this join reads."""
    out = []
    for join in spec.joins:
        raw_key = value.get(join.on)
        if raw_key is not None and not isinstance(raw_key, dict | list):
            out.append((join.table.base.name, str(raw_key)))
    return out


def evaluate(
    spec: JoinedStream, value: Mapping[str, Any], store: Store, *, as_of: int, expired: bool, waited: float
) -> Decision:
    """Join one decoded stream record with each table's version as of `as_of` (ms). `expired`
    tells that the record has waited its bound (`waited` seconds) for missing rows."""
    out = spec.stream.project(value)
    if spec.where is not None and not spec.where(dict(value)):
        return Decision("skip")
    missing: list[str] = []
    too_old = False
    for join in spec.joins:
        raw_key = value.get(join.on)
        row: Row | None = None
        if raw_key is None or isinstance(raw_key, (dict, list)):  # a tuple: faster than dict | list
            if join.kind == "inner":
                return Decision(
                    "dead", reason=f"{spec.name}: join column {join.on!r} is null or not a scalar"
                )
        else:
            key = str(raw_key)
            history = store.history(join.base_name, key)  # tables.lookup_as_of, inlined
            if history is not None:
                row, old = history.as_of(as_of)
                too_old = too_old or old
                if row is not None and join.accepts is not None and not join.accepts(row):
                    row = None
            if row is None:
                if join.wait and not expired:
                    missing.append(f"{join.table.name}[{key!r}]")
                    continue
                if join.kind == "inner":
                    after = f" within {waited:g}s of its time" if join.wait else ""
                    return Decision(
                        "dead",
                        reason=f"{spec.name}: no row in {join.table.name} with key {key!r} "
                        f"(from {join.on!r}){after}",
                    )
        if row is None:
            out.update(dict.fromkeys(join.output_names))
        else:
            out.update(zip(join.output_names, map(row.get, join.output_sources), strict=True))
    if missing:
        return Decision("wait", missing=tuple(missing), too_old=too_old)
    return Decision("emit", output=out, too_old=too_old)
