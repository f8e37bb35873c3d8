"""Table semantics: LATEST_BY_OFFSET per column with nulls ignored, tombstones delete, filtered views.

A table is keyed by the Kafka message key (a UTF-8 string) unless `key=` names a column. Each
record updates the columns it carries with a non-null value and keeps the others, as ksqlDB's
`LATEST_BY_OFFSET(col)` ... `GROUP BY id` does; a record with a null value (a tombstone) deletes
the row. A filtered table is a view over a table (`WHERE ...`): a row is in it while the
predicate holds for the row's latest values. Each change is also a version of the key at the
record's timestamp (`state.History`): joins read the version as of their record's time
(`lookup_as_of`), pull queries the latest row (`lookup`, `TableView`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from materializer.errors import PoisonRecord, TopologyError
from materializer.source import Record
from materializer.state import Batch, Row, Store

Columns = Sequence[str] | Mapping[str, type | tuple[type, ...]]
Predicate = Callable[[Row], bool]

_SCALARS: tuple[type, ...] = (str, int, float, bool)
_SCALAR_TYPES = frozenset(_SCALARS)


def normalize_columns(columns: Columns) -> tuple[tuple[str, ...], dict[str, tuple[type, ...]] | None]:
    """Column names, and their allowed types when the declaration gives them."""
    if isinstance(columns, str):
        raise TopologyError("columns must be a sequence of names or a mapping of name to type, not a str")
    if isinstance(columns, Mapping):
        types = {name: t if isinstance(t, tuple) else (t,) for name, t in columns.items()}
        names = tuple(types)
    else:
        names, types = tuple(columns), None
    if len(set(names)) != len(names):
        raise TopologyError(f"duplicate column in {names}")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TopologyError(f"column names must be non-empty strings, got {name!r}")
    return names, types


def check_columns(
    value: Mapping[str, Any], names: tuple[str, ...], types: dict[str, tuple[type, ...]] | None
) -> None:
    """PoisonRecord when a declared column holds a value of the wrong type (null is always allowed)."""
    for name in names:
        v = value.get(name)
        if v is None:
            continue
        if types is None and type(v) in _SCALAR_TYPES:  # the common case, decided at once
            continue
        allowed = _SCALARS if types is None else types[name]
        if isinstance(v, bool) and bool not in allowed:
            raise PoisonRecord(f"column {name!r} is a boolean, expected {_names(allowed)}")
        if isinstance(v, int) and not isinstance(v, bool) and float in allowed and int not in allowed:
            continue  # a JSON integer is a valid float
        if not isinstance(v, allowed):
            raise PoisonRecord(f"column {name!r} is a JSON {type(v).__name__}, expected {_names(allowed)}")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


@dataclass(frozen=True, eq=False)
class Table:
    """A table materialized from a topic: `CREATE TABLE name AS SELECT LATEST_BY_OFFSET(...) GROUP BY key`."""

    name: str
    topic: str
    columns: tuple[str, ...]
    types: dict[str, tuple[type, ...]] | None = None
    key: str | None = None

    @property
    def base(self) -> Table:
        return self

    def accepts(self, row: Row) -> bool:
        return True

    def row_key(self, record: Record, value: Mapping[str, Any] | None) -> str:
        if self.key is not None and value is not None:
            k = value.get(self.key)
            if k is None or isinstance(k, dict | list):
                raise PoisonRecord(f"key column {self.key!r} is missing or not a scalar")
            return str(k)
        key = record.text_key()
        if key is None:
            raise PoisonRecord("record has no key")
        return key

    def apply(self, batch: Batch, record: Record, value: Mapping[str, Any] | None) -> None:
        """Fold one record into the batch: merge its non-null columns, or delete on a tombstone."""
        key = self.row_key(record, value)
        old = batch.get(self.name, key)
        if value is None:
            if old is not None:
                batch.delete(self.name, key, existed=True, ts=record.timestamp)
            return
        check_columns(value, self.columns, self.types)
        row = dict.fromkeys(self.columns) if old is None else dict(old)
        for column in self.columns:
            v = value.get(column)
            if v is not None:
                row[column] = v
        batch.put(self.name, key, row, existed=old is not None, ts=record.timestamp)


@dataclass(frozen=True, eq=False)
class FilteredTable:
    """A view over a table: `CREATE TABLE name AS SELECT * FROM table WHERE ...`."""

    name: str
    base: Table
    where: Predicate

    @property
    def topic(self) -> str:
        return self.base.topic

    @property
    def columns(self) -> tuple[str, ...]:
        return self.base.columns

    def accepts(self, row: Row) -> bool:
        try:
            return bool(self.where(row))
        except Exception:  # a predicate that fails on a row does not select it
            return False


AnyTable = Table | FilteredTable


def lookup(store: Store, table: AnyTable, key: str) -> Row | None:
    """The latest row of `key` (what pull queries read)."""
    row = store.get(table.base.name, key)
    if row is None or not table.accepts(row):
        return None
    return row


def lookup_as_of(store: Store, table: AnyTable, key: str, ts: int) -> tuple[Row | None, bool]:
    """The row of `key` valid at time `ts` (its latest version with timestamp <= ts), and whether
    `ts` is older than the versions kept (the oldest version kept is then given)."""
    history = store.history(table.base.name, key)
    if history is None:
        return None, False
    row, too_old = history.as_of(ts)
    if row is None or not table.accepts(row):
        return None, too_old
    return row, too_old


class TableView:
    """Read access to one materialized table (or filtered view) for the embedding service."""

    def __init__(self, store: Store, table: AnyTable) -> None:
        self._store = store
        self.table = table

    @property
    def name(self) -> str:
        return self.table.name

    def get(self, key: str | int) -> Row | None:
        return lookup(self._store, self.table, str(key))

    def __getitem__(self, key: str | int) -> Row:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | int) and self.get(key) is not None

    def items(self) -> Iterator[tuple[str, Row]]:
        for key, row in self._store.items(self.table.base.name):
            if self.table.accepts(row):
                yield key, row

    def keys(self) -> Iterator[str]:
        for key, _ in self.items():
            yield key

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __len__(self) -> int:
        if isinstance(self.table, Table):
            return self._store.count(self.table.name)
        return sum(1 for _ in self.items())
