"""Table state in layers: an abstract store, a memory backend and a RocksDB backend.

A `Batch` collects the row changes and the consumed offsets of one poll; `Store.write` applies
it at once. The RocksDB backend turns it into ONE rocksdict WriteBatch, so rows and offsets can
never disagree after a crash (Faust wrote them separately). Reads inside a poll see the batch
first (`Batch.get`), then the store. `restore` is the one check that state belongs to the
topology reading it (its fingerprint) and still matches the topics, else wipes it for a rebuild.

Versions: besides its latest row (what pull queries read), each key keeps its `History`, the
versions by record timestamp (a deletion is a version too), as Kafka Streams' versioned stores
do (KIP-889). A version is dropped once a newer one is older than the table's stream time (the
largest timestamp it has seen) minus the retention; the version valid at that boundary is kept,
so an old lookup still finds the oldest version kept. `History.as_of(ts)` is the version valid
at `ts`. Histories are written in the same batch as the rows and offsets. A deleted key is
indexed by the time of its deletion, so `Batch.sweep` forgets its history once the retention has
passed: state stays bounded by the keys alive and the changes within the retention.
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

DEFAULT_RETENTION_MS = 3_600_000
HISTORY_CACHE_SIZE = 50_000  # decoded histories kept in front of RocksDB (joins read them per record)


class History:
    """The versions of one key, oldest first: `(timestamp, row or None for deleted)`. `pruned`
    tells that older versions were dropped (a lookup before the oldest kept one is then too old
    to answer exactly, not a time before the key existed)."""

    __slots__ = ("pruned", "versions")

    def __init__(self, versions: list[tuple[int, Row | None]] | None = None, pruned: bool = False) -> None:
        self.versions = versions if versions is not None else []
        self.pruned = pruned

    def as_of(self, ts: int) -> tuple[Row | None, bool]:
        """The row valid at `ts` (the latest version with timestamp <= ts), and whether `ts` is
        before the history kept (then the oldest version kept is given)."""
        versions = self.versions
        found: Row | None = None
        hit = False
        for at, row in versions:  # short lists: a scan beats bisect's key building
            if at > ts:
                break
            found, hit = row, True
        if not hit and self.pruned and versions:  # nothing kept at or before ts
            return versions[0][1], True
        return found, False

    def times(self, after: int, until: int) -> list[int]:
        """Timestamps of the versions in (after, until]."""
        return [at for at, _ in self.versions if after < at <= until]

    def add(self, ts: int, row: Row | None, boundary: int) -> None:
        """Insert the version of time `ts` (one of the same time is replaced: the later record
        wins), then drop the versions superseded at or before `boundary`."""
        versions = self.versions
        i = len(versions)
        while i and versions[i - 1][0] > ts:
            i -= 1
        if i and versions[i - 1][0] == ts:
            versions[i - 1] = (ts, row)
        else:
            versions.insert(i, (ts, row))
        while len(versions) > 1 and versions[1][0] <= boundary:
            del versions[0]
            self.pruned = True

    def expired(self, boundary: int) -> bool:
        """The key was deleted before the boundary: its whole history can be forgotten."""
        return bool(self.versions) and self.versions[-1][1] is None and self.versions[-1][0] <= boundary

    def encode(self) -> bytes:
        return orjson.dumps({"p": self.pruned, "v": self.versions})

    @classmethod
    def decode(cls, raw: bytes) -> History:
        data = orjson.loads(raw)
        return cls([(at, row) for at, row in data["v"]], bool(data["p"]))

    def copy(self) -> History:
        return History(list(self.versions), self.pruned)


class Batch:
    """Row puts and deletes, their versions, plus the next offset of each partition, written
    together. `retention_ms` bounds the versions kept per key (see `History`)."""

    __slots__ = (
        "counts",
        "deletions",
        "histories",
        "offsets",
        "retention_ms",
        "rows",
        "store",
        "stream_times",
    )

    def __init__(self, store: Store, retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        self.store = store
        self.retention_ms = retention_ms
        self.rows: dict[tuple[str, str], Row | None] = {}
        self.histories: dict[tuple[str, str], History | None] = {}
        self.stream_times: dict[str, int] = {}
        self.deletions: dict[tuple[str, int, str], bool] = {}  # (table, time, key): add or drop
        self.offsets: dict[TopicPartitionKey, int] = {}
        self.counts: dict[str, int] = {}

    def get(self, table: str, key: str) -> Row | None:
        """The row as this batch would leave it."""
        found = self.rows.get((table, key), _DELETED)
        if found is not _DELETED:
            return found  # type: ignore[return-value]
        return self.store.get(table, key)

    def put(self, table: str, key: str, row: Row, existed: bool, ts: int = 0) -> None:
        self.rows[(table, key)] = row
        if not existed:
            self.counts[table] = self.counts.get(table, 0) + 1
        self._version(table, key, ts, row)

    def delete(self, table: str, key: str, existed: bool, ts: int = 0) -> None:
        self.rows[(table, key)] = None
        if existed:
            self.counts[table] = self.counts.get(table, 0) - 1
        self._version(table, key, ts, None)

    def _history(self, table: str, key: str) -> History | None:
        found = self.histories.get((table, key), _DELETED)
        if found is _DELETED:
            stored = self.store.history(table, key)
            return None if stored is None else stored.copy()
        return found  # type: ignore[return-value]

    def _version(self, table: str, key: str, ts: int, row: Row | None) -> None:
        stream_time = max(self.stream_times.get(table, self.store.stream_time(table)), ts)
        self.stream_times[table] = stream_time
        history = self._history(table, key) or History()
        boundary = stream_time - self.retention_ms
        history.add(ts, row, boundary)
        self.histories[(table, key)] = None if history.expired(boundary) else history
        if row is None:
            self.deletions[(table, ts, key)] = True

    def sweep(self) -> None:
        """Forget the histories of keys deleted before the retention of the tables changed here."""
        for table, stream_time in self.stream_times.items():
            boundary = stream_time - self.retention_ms
            for ts, key in self.store.deletions_before(table, boundary):
                history = self._history(table, key)
                if history is not None and history.expired(boundary):
                    self.histories[(table, key)] = None
                self.deletions[(table, ts, key)] = False

    def offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.offsets[(topic, partition)] = next_offset

    def __len__(self) -> int:
        return len(self.rows) + len(self.offsets)


class Store(ABC):
    """Rows by (table, key) with their histories, the next offset to read per table partition,
    and a fingerprint."""

    @abstractmethod
    def get(self, table: str, key: str) -> Row | None: ...

    @abstractmethod
    def history(self, table: str, key: str) -> History | None:
        """The versions of a key (None: none kept). Callers must not change it."""

    @abstractmethod
    def stream_time(self, table: str) -> int:
        """The largest record timestamp the table has seen (-1: none)."""

    @abstractmethod
    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        """(time, key) of the deletions indexed at or before `boundary`."""

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

    def batch(self, retention_ms: int = DEFAULT_RETENTION_MS) -> Batch:
        return Batch(self, retention_ms)


class MemoryState(Store):
    """Everything in dicts: for the offline engine, unit tests, and workers that rebuild at start."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Row]] = {}
        self._histories: dict[tuple[str, str], History] = {}
        self._stream_times: dict[str, int] = {}
        self._deletions: set[tuple[str, int, str]] = set()
        self._offsets: dict[TopicPartitionKey, int] = {}
        self._fingerprint: str | None = None

    def get(self, table: str, key: str) -> Row | None:
        rows = self._rows.get(table)
        return None if rows is None else rows.get(key)

    def history(self, table: str, key: str) -> History | None:
        return self._histories.get((table, key))

    def stream_time(self, table: str) -> int:
        return self._stream_times.get(table, -1)

    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        return sorted((ts, key) for t, ts, key in self._deletions if t == table and ts <= boundary)

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
        for table_key, history in batch.histories.items():
            if history is None:
                self._histories.pop(table_key, None)
            else:
                self._histories[table_key] = history
        self._stream_times.update(batch.stream_times)
        for deletion, add in batch.deletions.items():
            if add:
                self._deletions.add(deletion)
            else:
                self._deletions.discard(deletion)
        self._offsets.update(batch.offsets)

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def set_fingerprint(self, value: str) -> None:
        self._fingerprint = value

    def wipe(self) -> None:
        self._rows.clear()
        self._histories.clear()
        self._stream_times.clear()
        self._deletions.clear()
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
_ROW, _OFFSET, _COUNT, _META, _HISTORY, _TIME, _DELETION = b"r", b"o", b"c", b"m", b"v", b"t", b"d"
_TIME_SHIFT = 1 << 62  # deletion times as fixed-width non-negative text, so they sort
_FINGERPRINT = _META + b"fingerprint"


def _row_key(table: str, key: str) -> bytes:
    return _ROW + table.encode() + b"\0" + key.encode()


def _history_key(table: str, key: str) -> bytes:
    return _HISTORY + table.encode() + b"\0" + key.encode()


def _deletion_key(table: str, ts: int, key: str) -> bytes:
    return _DELETION + table.encode() + b"\0" + b"%020d" % (ts + _TIME_SHIFT) + b"\0" + key.encode()


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
        self._stream_times: dict[str, int] = {}
        self._histories: dict[bytes, History] = {}  # a bounded read cache, kept by `write`

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

    def history(self, table: str, key: str) -> History | None:
        db_key = _history_key(table, key)
        cache = self._histories
        if db_key in cache:
            return cache[db_key]
        raw = self._db.get(db_key)
        if raw is None:
            return None  # not cached: a table build would fill the cache with new keys
        history = History.decode(raw)
        if len(cache) >= HISTORY_CACHE_SIZE:
            cache.clear()
        cache[db_key] = history
        return history

    def stream_time(self, table: str) -> int:
        if table not in self._stream_times:
            raw = self._db.get(_TIME + table.encode())
            self._stream_times[table] = int(raw) if raw is not None else -1
        return self._stream_times[table]

    def deletions_before(self, table: str, boundary: int) -> list[tuple[int, str]]:
        prefix = _DELETION + table.encode() + b"\0"
        out = []
        for raw_key in self._db.keys(from_key=prefix):
            if not raw_key.startswith(prefix):
                break
            at, _, key = raw_key[len(prefix) :].partition(b"\0")
            ts = int(at) - _TIME_SHIFT
            if ts > boundary:
                break
            out.append((ts, key.decode()))
        return out

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
        cache = self._histories
        for (table, key), history in batch.histories.items():
            db_key = _history_key(table, key)
            cache.pop(db_key, None)  # read again after the write: the batch's copy stays its own
            if history is None:
                wb.delete(db_key)
            else:
                wb.put(db_key, history.encode())
        for table, stream_time in batch.stream_times.items():
            wb.put(_TIME + table.encode(), str(stream_time).encode())
        for (table, ts, key), add in batch.deletions.items():
            if add:
                wb.put(_deletion_key(table, ts, key), b"")
            else:
                wb.delete(_deletion_key(table, ts, key))
        totals = {t: self.count(t) + d for t, d in batch.counts.items() if d}
        for table, total in totals.items():
            wb.put(_COUNT + table.encode(), str(total).encode())
        for (topic, partition), offset in batch.offsets.items():
            wb.put(_offset_key(topic, partition), str(offset).encode())
        self._db.write(wb, self._write_options)
        self._counts.update(totals)
        self._stream_times.update(batch.stream_times)

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
        self._stream_times.clear()
        self._histories.clear()
        self.rebuilt = True

    def close(self) -> None:
        self._db.close()
