"""Table state in layers: an abstract store, a memory backend and a RocksDB backend.

A `Batch` collects the row changes and the consumed offsets of one poll; `Store.write` applies
it at once. The RocksDB backend turns it into ONE rocksdict WriteBatch, so rows and offsets can
never disagree after a crash (Faust wrote them separately). Reads inside a poll see the batch
first (`Batch.get`), then the store. `restore` is the one check that state belongs to the topology
reading it (its fingerprint) and still matches the topics, else wipes it for a rebuild.
"""

from __future__ import annotations

import logging
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from materializer.errors import StateError

log = logging.getLogger(__name__)

Row = dict[str, Any]
TopicPartitionKey = tuple[str, int]

_DELETED = object()


class Batch:
    """Row puts and deletes plus the next offset of each partition, written together."""

    __slots__ = ("counts", "offsets", "rows", "store")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: dict[tuple[str, str], Row | None] = {}
        self.offsets: dict[TopicPartitionKey, int] = {}
        self.counts: dict[str, int] = {}

    def get(self, table: str, key: str) -> Row | None:
        """The row as this batch would leave it."""
        found = self.rows.get((table, key), _DELETED)
        if found is not _DELETED:
            return found  # type: ignore[return-value]
        return self.store.get(table, key)

    def put(self, table: str, key: str, row: Row, existed: bool) -> None:
        self.rows[(table, key)] = row
        if not existed:
            self.counts[table] = self.counts.get(table, 0) + 1

    def delete(self, table: str, key: str, existed: bool) -> None:
        self.rows[(table, key)] = None
        if existed:
            self.counts[table] = self.counts.get(table, 0) - 1

    def offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.offsets[(topic, partition)] = next_offset

    def __len__(self) -> int:
        return len(self.rows) + len(self.offsets)


class Store(ABC):
    """Rows by (table, key), the next offset to read per table partition, and a fingerprint."""

    @abstractmethod
    def get(self, table: str, key: str) -> Row | None: ...

    @abstractmethod
    def items(self, table: str) -> Iterator[tuple[str, Row]]: ...

    @abstractmethod
    def count(self, table: str) -> int: ...

    @abstractmethod
    def offsets(self) -> dict[TopicPartitionKey, int]: ...

    @abstractmethod
    def write(self, batch: Batch) -> None: ...

    @abstractmethod
    def fingerprint(self) -> str | None: ...

    @abstractmethod
    def set_fingerprint(self, value: str) -> None: ...

    @abstractmethod
    def wipe(self) -> None:
        """Forget everything (the tables are then rebuilt from the beginning of the topics)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files; the memory backend has none."""

    def batch(self) -> Batch:
        return Batch(self)


class MemoryState(Store):
    """Everything in dicts: for the offline engine, unit tests, and workers that rebuild at start."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Row]] = {}
        self._offsets: dict[TopicPartitionKey, int] = {}
        self._fingerprint: str | None = None

    def get(self, table: str, key: str) -> Row | None:
        rows = self._rows.get(table)
        return None if rows is None else rows.get(key)

    def items(self, table: str) -> Iterator[tuple[str, Row]]:
        yield from sorted(self._rows.get(table, {}).items())

    def count(self, table: str) -> int:
        return len(self._rows.get(table, {}))

    def offsets(self) -> dict[TopicPartitionKey, int]:
        return dict(self._offsets)

    def write(self, batch: Batch) -> None:
        for (table, key), row in batch.rows.items():
            rows = self._rows.setdefault(table, {})
            if row is None:
                rows.pop(key, None)
            else:
                rows[key] = row
        self._offsets.update(batch.offsets)

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def set_fingerprint(self, value: str) -> None:
        self._fingerprint = value

    def wipe(self) -> None:
        self._rows.clear()
        self._offsets.clear()
        self._fingerprint = None


def restore(store: Store, fingerprint: str, *, stale: bool = False) -> bool:
    """Make `store` hold the state of the topology with `fingerprint`. It is kept when it was
    written for that topology; it is wiped when it was written for another one, when it holds
    offsets but no fingerprint (its origin is unknown), or when the caller found it `stale` (its
    offsets are past the topics' end). Returns whether it was wiped: the tables are then rebuilt
    from the beginning of the topics."""
    found = store.fingerprint()
    wipe = stale or (found != fingerprint and (found is not None or bool(store.offsets())))
    if wipe:
        if not stale:
            log.warning("state was made for another topology: rebuilding from the topics")
        store.wipe()
    if wipe or found != fingerprint:
        store.set_fingerprint(fingerprint)
    return wipe


# RocksDB key layout (raw bytes): one prefix byte, then the name, a NUL, then the key.
_ROW, _OFFSET, _COUNT, _META = b"r", b"o", b"c", b"m"
_FINGERPRINT = _META + b"fingerprint"


def _row_key(table: str, key: str) -> bytes:
    return _ROW + table.encode() + b"\0" + key.encode()


def _offset_key(topic: str, partition: int) -> bytes:
    return _OFFSET + topic.encode() + b"\0" + str(partition).encode()


class RocksState(Store):
    """Rows and offsets in one RocksDB database (rocksdict, raw bytes). A folder that cannot be
    opened is moved aside and started empty: the tables are then rebuilt from the topics."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rebuilt = False
        self._db: Any = self._open()
        self._write_options = WriteOptions()  # WAL on, no fsync: survives kill -9, not power loss
        self._counts: dict[str, int] = {}

    def _open(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open_db()
        except Exception as exc:  # RocksDB reports corruption as a plain exception
            log.warning("state at %s is damaged (%s): rebuilding from the topics", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self.rebuilt = True
            try:
                return self._open_db()
            except Exception as again:
                raise StateError(f"cannot open state at {self.path}: {again}") from again

    def _open_db(self) -> Any:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_paranoid_checks(True)
        db = Rdict(str(self.path), options=options)
        probe = db.get(_FINGERPRINT)
        if probe is not None:
            probe.decode()  # a damaged value fails here rather than later
        return db

    def get(self, table: str, key: str) -> Row | None:
        raw = self._db.get(_row_key(table, key))
        return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return,unused-ignore]

    def items(self, table: str) -> Iterator[tuple[str, Row]]:
        prefix = _ROW + table.encode() + b"\0"
        for raw_key, raw in self._db.items(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            yield raw_key[len(prefix) :].decode(), orjson.loads(raw)

    def count(self, table: str) -> int:
        if table not in self._counts:
            raw = self._db.get(_COUNT + table.encode())
            self._counts[table] = int(raw) if raw is not None else 0
        return self._counts[table]

    def offsets(self) -> dict[TopicPartitionKey, int]:
        out: dict[TopicPartitionKey, int] = {}
        for raw_key, raw in self._db.items(from_key=_OFFSET):
            if not raw_key.startswith(_OFFSET):
                break
            topic, _, partition = raw_key[1:].rpartition(b"\0")
            out[(topic.decode(), int(partition))] = int(raw)
        return out

    def write(self, batch: Batch) -> None:
        wb = WriteBatch(raw_mode=True)
        dumps = orjson.dumps
        for (table, key), row in batch.rows.items():
            if row is None:
                wb.delete(_row_key(table, key))
            else:
                wb.put(_row_key(table, key), dumps(row))
        totals = {t: self.count(t) + d for t, d in batch.counts.items() if d}
        for table, total in totals.items():
            wb.put(_COUNT + table.encode(), str(total).encode())
        for (topic, partition), offset in batch.offsets.items():
            wb.put(_offset_key(topic, partition), str(offset).encode())
        self._db.write(wb, self._write_options)
        self._counts.update(totals)

    def fingerprint(self) -> str | None:
        raw = self._db.get(_FINGERPRINT)
        return None if raw is None else bytes(raw).decode()

    def set_fingerprint(self, value: str) -> None:
        self._db.put(_FINGERPRINT, value.encode(), self._write_options)

    def wipe(self) -> None:
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open_db()
        self._counts.clear()
        self.rebuilt = True

    def close(self) -> None:
        self._db.close()
