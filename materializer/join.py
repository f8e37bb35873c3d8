"""Stream-table joins: `CREATE STREAM out AS SELECT ... FROM stream s [LEFT] JOIN table t ON s.col = t.key`.

Evaluation is pure: given a stream record's value and the tables as they stand, `evaluate` says
whether to emit (and what), wait for a row that is not there yet, skip (the `where` predicate), or
dead-letter (and why). The runners decide how long a record may wait (`join_wait_seconds`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from materializer.errors import TopologyError
from materializer.source import Source
from materializer.state import Row, Store
from materializer.tables import AnyTable, check_columns, lookup

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
        if not self.columns:
            return dict(value)
        check_columns(value, self.columns, self.types)
        return {c: value.get(c) for c in self.columns}


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

    def __post_init__(self) -> None:
        if self.kind not in ("inner", "left"):
            raise TopologyError(f"join kind must be 'inner' or 'left', got {self.kind!r}")
        for out, column in self.output_columns().items():
            if column not in self.table.columns:
                raise TopologyError(f"{self.table.name} has no column {column!r} (wanted as {out!r})")

        object.__setattr__(self, "outputs", tuple(self.output_columns().items()))

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


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one stream record for one join."""

    verdict: Verdict
    output: Row | None = None
    reason: str = ""
    missing: tuple[str, ...] = ()


def evaluate(
    spec: JoinedStream, value: Mapping[str, Any], store: Store, *, expired: bool, waited: float
) -> Decision:
    """Join one decoded stream record against the tables as they stand now. `expired` tells that
    the record has waited its bound (`waited` seconds) for missing rows."""
    out = spec.stream.project(value)
    if spec.where is not None and not spec.where(dict(value)):
        return Decision("skip")
    missing: list[str] = []
    for join in spec.joins:
        raw_key = value.get(join.on)
        row: Row | None = None
        if raw_key is None or isinstance(raw_key, dict | list):
            if join.kind == "inner":
                return Decision(
                    "dead", reason=f"{spec.name}: join column {join.on!r} is null or not a scalar"
                )
        else:
            key = str(raw_key)
            row = lookup(store, join.table, key)
            if row is None:
                if join.wait and not expired:
                    missing.append(f"{join.table.name}[{key!r}]")
                    continue
                if join.kind == "inner":
                    after = f" after waiting {waited:g}s" if join.wait else ""
                    return Decision(
                        "dead",
                        reason=f"{spec.name}: no row in {join.table.name} with key {key!r} "
                        f"(from {join.on!r}){after}",
                    )
        if row is None:
            for name, _ in join.outputs:
                out[name] = None
        else:
            for name, column in join.outputs:
                out[name] = row.get(column)
    if missing:
        return Decision("wait", missing=tuple(missing))
    return Decision("emit", output=out)
